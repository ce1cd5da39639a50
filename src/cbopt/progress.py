"""The one progress display: :func:`cbopt.minimize` (``progress=True``), the other front doors, the ``cbopt``
command, and :func:`cbopt.nn.train` (by epoch).

A tqdm bar over the evaluation budget (or the epochs) when tqdm is installed and stderr is a terminal, else a
status line (rewritten in place on a terminal, at most every two seconds to a file; one line per epoch).
Either way the last line shows the final state: why the run stopped, the best value and the evaluations spent.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any


class Progress:
    """Call with each intermediate result; :meth:`close` with the final one."""

    def __init__(self, total: float | None = None, stream: Any = None, every: float = 0.1, unit: str = "eval",
                 desc: str | None = None):
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.unit = unit  # "eval": counts r.nfev; "epoch": counts r["epoch"], one line each
        self.every = 0.0 if unit == "epoch" else every if self.tty else 2.0
        self.total: int | None = None if total is None or not math.isfinite(total) else int(total)
        self.last = -math.inf
        self.t0 = time.perf_counter()
        self.bar = None
        if self.tty and self.total is not None:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=self.total, unit=unit, desc=desc, file=self.stream, dynamic_ncols=True,
                                leave=True)
            except ImportError:
                self.bar = None

    def _evals(self, nfev: int) -> str:
        return f"{nfev}/{self.total}" if self.total is not None else str(nfev)

    def __call__(self, intermediate_result: Any) -> None:  # the name asks minimize for the whole result
        r = intermediate_result
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        count = int(r["epoch"]) if self.unit == "epoch" else int(r.nfev)
        if self.bar is not None:
            self.bar.n = min(count, self.bar.total)
            self.bar.set_postfix_str(_state(r), refresh=True)
            return
        if self.unit == "epoch":
            self.stream.write(f"epoch {count}: {_state(r)} ({now - self.t0:.1f}s)\n")
        else:
            line = f"it {r.nit:>6}  evals {self._evals(count):>15}  {_state(r, 12)}  {now - self.t0:6.1f}s"
            self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self, res: Any = None) -> None:
        """End the display; with the final result, a last line with its state."""
        if self.bar is not None:
            if res is not None:
                self.bar.n = min(int(res.nfev), self.bar.total)
                self.bar.refresh()
            self.bar.close()
        elif self.tty and self.last > -math.inf and self.unit != "epoch":
            self.stream.write("\n")
        if res is not None:
            self.stream.write(f"{res.reason}: {_state(res)}, {self._evals(int(res.nfev))} evaluations, "
                              f"{time.perf_counter() - self.t0:.1f}s\n")
        self.stream.flush()


def _state(r: Any, width: int = 0) -> str:
    """What a result says of progress: a training epoch's loss and accuracies, its best value, or the size of a
    multi-objective front."""
    if r.get("loss") is not None:
        parts = [f"loss {r['loss']:.4f}"]
        parts += [f"{name} {r[key]:.3f}" for key, name in (("accuracy", "acc"), ("test_accuracy", "test acc"))
                  if r.get(key) is not None]
        return " ".join(parts)
    if r.get("fun") is not None:
        return f"best f {r.fun:>{width}.6g}"
    if r.get("F") is not None:
        return f"front of {len(r.F)}"
    return "best f none"
