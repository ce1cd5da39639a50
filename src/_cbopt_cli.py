"""The ``cbopt`` command's entry point. It lives outside the package so that Ctrl-C while the package (and
numpy) is still being imported ends like Ctrl-C at any later moment: one line and exit status 130, never
a traceback."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from cbopt.cli import main as run

        return run()
    except KeyboardInterrupt:  # during the imports, or before the command's own handler is in place
        print("cbopt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
