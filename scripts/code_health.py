"""The shape of the code, in numbers: `Any` annotations, the longest functions (bodies without docstrings), and
where a new status or stopping default has to be written.

    python scripts/code_health.py [src/cbopt]
"""

import ast
import pathlib
import re
import sys


def function_lengths(root):
    rows = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                first = body[0] if body else None
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                        and isinstance(first.value.value, str):
                    body = body[1:]
                if body:
                    rows.append((body[-1].end_lineno - body[0].lineno + 1, f"{path.relative_to(root)}:{node.name}"))
    return sorted(rows, reverse=True)


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src/cbopt")
    files = sorted(root.rglob("*.py"))
    text = {p: p.read_text() for p in files}
    n_any = sum(len(re.findall(r"\bAny\b", t)) for t in text.values())
    print(f"files: {len(files)}, lines: {sum(t.count(chr(10)) for t in text.values())}, `Any`: {n_any}")
    print("longest function bodies (lines, docstrings excluded):")
    for n, name in function_lengths(root)[:5]:
        print(f"  {n:4d}  {name}")
    status_homes = [str(p.relative_to(root)) for p, t in text.items() if re.search(r"^class Status\(", t, re.M)]
    message_homes = [str(p.relative_to(root)) for p, t in text.items() if re.search(r"^MESSAGES\s*=", t, re.M)]
    stop_homes = [str(p.relative_to(root)) for p, t in text.items() if re.search(r"^class Stop:", t, re.M)]
    print(f"a new status: the enum in {status_homes}, its sentence in {message_homes}")
    print(f"a new stopping default: the fields of {stop_homes}")


if __name__ == "__main__":
    main()
