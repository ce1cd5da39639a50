"""The results store: one SQLite file holding every run of every sweep.

A run is identified by (suite, solver, problem, dim, instance, seed, budget); it is written in one
transaction when it completes, so re-running a sweep skips completed runs and a crash loses at most the
runs in flight. Each row keeps the configuration, the seed, library versions, the trace of best f against
evaluations (JSON), the final values and the wall time.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    suite TEXT NOT NULL, solver TEXT NOT NULL, problem TEXT NOT NULL, dim INTEGER NOT NULL,
    instance INTEGER NOT NULL, seed INTEGER NOT NULL, budget INTEGER NOT NULL, target REAL NOT NULL,
    fopt REAL NOT NULL, best REAL NOT NULL, nfev INTEGER NOT NULL, evals_to_target INTEGER,
    trace TEXT NOT NULL, wall REAL NOT NULL, versions TEXT NOT NULL, created TEXT DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (suite, solver, problem, dim, instance, seed, budget)
)
"""


@dataclass(frozen=True)
class Key:
    suite: str
    solver: str
    problem: str
    dim: int
    instance: int
    seed: int
    budget: int


class Store:
    def __init__(self, path: str):
        self.path = str(path)
        self.db = sqlite3.connect(self.path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)
        self.db.commit()

    def done(self, suite: str) -> set[Key]:
        rows = self.db.execute("SELECT suite, solver, problem, dim, instance, seed, budget FROM runs WHERE suite=?",
                               (suite,))
        return {Key(*r) for r in rows}

    def add(self, key: Key, *, target: float, fopt: float, best: float, nfev: int, evals_to_target: int | None,
            trace: list[tuple[int, float]], wall: float, versions: dict[str, str]) -> None:
        with self.db:  # one transaction per run
            self.db.execute(
                "INSERT OR IGNORE INTO runs (suite, solver, problem, dim, instance, seed, budget, target, fopt, best,"
                " nfev, evals_to_target, trace, wall, versions) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key.suite, key.solver, key.problem, key.dim, key.instance, key.seed, key.budget, target, fopt, best,
                 nfev, evals_to_target, json.dumps(trace), wall, json.dumps(versions)),
            )

    def rows(self, suite: str | None = None) -> list[dict[str, Any]]:
        self.db.row_factory = sqlite3.Row
        where = " WHERE suite=?" if suite else ""
        q = f"SELECT * FROM runs{where} ORDER BY solver, problem, dim, instance, seed"
        out = [dict(r) for r in self.db.execute(q, (suite,) if suite else ())]
        self.db.row_factory = None
        for r in out:
            r["trace"] = json.loads(r["trace"])
        return out

    def close(self) -> None:
        self.db.close()
