"""Run every benchmark in bench/ and print their tables.

The peer matching engines and the second MILP solver that the benchmarks
compare against are the ``bench`` extra of pyproject.toml, installed with
everything else from requirements.lock by ``make``.

1. Runs each standalone script ``bench/bench_*.py`` (``bench_core.py``,
   ``bench_journal.py``, ...), passing ``--messages`` through, and streams its
   table (``bench_journal.py`` sizes its own 10-million-command flow and
   ignores ``--messages``; ``bench_gateway.py`` runs for a fixed time and ignores it too).
2. Runs the pytest-benchmark micro-benchmarks:
   ``pytest bench/test_micro.py --benchmark-only``.

Last, prints the summary line of every script (``name=value ...``). Exit
status 1 if any step failed. Usage: ``python bench/run_all.py [--messages N]
[--no-micro]``; ``make bench`` runs it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def run_script(script: Path, args: list[str]) -> tuple[int, str]:
    """Run one benchmark script, echoing its output; (exit status, its last line)."""
    print(f"\n=== {script.relative_to(ROOT)} {' '.join(args)}", flush=True)
    proc = subprocess.Popen([sys.executable, str(script), *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    last = ""
    for line in proc.stdout:
        print(line, end="", flush=True)
        if line.strip():
            last = line.strip()
    return proc.wait(), last


def run_micro() -> int:
    print("\n=== pytest bench/test_micro.py --benchmark-only", flush=True)
    cmd = [sys.executable, "-m", "pytest", "bench/test_micro.py", "--benchmark-only", "-p", "no:cacheprovider",
           "--benchmark-columns=min,median,mean,stddev,ops,rounds", "--benchmark-sort=name"]
    return subprocess.run(cmd, cwd=ROOT, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, help="flow length passed to the bench_*.py scripts")
    ap.add_argument("--no-micro", action="store_true", help="skip the pytest-benchmark micro-benchmarks")
    args = ap.parse_args(argv)

    passthrough = ["--messages", str(args.messages)] if args.messages else []
    failed, summaries = [], []
    for script in sorted(BENCH.glob("bench_*.py")):
        status, last = run_script(script, passthrough)
        summaries.append(f"{script.stem}: {last}")
        if status:
            failed.append(script.name)
    if not args.no_micro and run_micro():
        failed.append("test_micro.py")
    print("\n=== summary")
    for line in summaries:
        print(line)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
