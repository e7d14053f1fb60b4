"""engine/ stays pure: no sockets, clocks, threads, subprocesses or randomness, and nothing from the layers above
it (the log, order entry, market data). journal/ may use the engine, never order entry or market data."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPURE = {"zmq", "socket", "threading", "time", "subprocess", "random", "asyncio", "multiprocessing"}
ABOVE = {"engine": {"journal", "gateway", "feeds", "bench", "tests"}, "journal": {"gateway", "feeds", "bench", "tests"}}


def imported(package: str) -> list[tuple[str, str]]:
    """(file, top-level module) of every import in a package's modules."""
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out += [(str(path.relative_to(ROOT)), a.name.split(".")[0]) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return out


def test_the_engine_imports_no_sockets_clocks_threads_or_randomness():
    assert [(f, m) for f, m in imported("engine") if m in IMPURE] == []


def test_imports_run_one_way_nothing_reaches_upward():
    for package, above in ABOVE.items():
        assert [(f, m) for f, m in imported(package) if m in above] == [], package
