"""Run every benchmark in bench/ and print their tables.

1. Installs the peer matching engines of ``bench/requirements-peers.txt`` into
   the running venv (``pip install -r``) when one is missing; if that fails the
   benchmarks skip that peer and say so.
2. Runs each standalone script ``bench/bench_*.py`` (``bench_core.py``,
   ``bench_journal.py``, ...), passing ``--messages`` through, and streams its
   table (``bench_journal.py`` sizes its own 10-million-command flow and
   ignores ``--messages``; ``bench_gateway.py`` runs for a fixed time and ignores it too).
3. Runs the pytest-benchmark micro-benchmarks:
   ``pytest bench/test_micro.py --benchmark-only``.

Last, prints the summary line of every script (``name=value ...``). Exit
status 1 if any step failed. Usage: ``python bench/run_all.py [--messages N]
[--skip-install] [--no-micro]``; ``make bench`` runs it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
REQUIREMENTS = BENCH / "requirements-peers.txt"


def pinned_requirements() -> list[tuple[str, str | None]]:
    """(distribution, pinned version or None) per line of requirements-peers.txt."""
    out = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out.append((re.split(r"[<>=!~\[; ]", name.strip())[0], version.strip() or None))
    return out


def ensure_peers() -> None:
    missing = []
    for name, version in pinned_requirements():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if version and have != version:
            missing.append(f"{name} ({have} installed, {version} wanted)")
    if not missing:
        print(f"peers installed: {', '.join(n for n, _ in pinned_requirements())}")
        return
    if sys.prefix == sys.base_prefix:
        print(f"peers missing ({', '.join(missing)}), but this Python is not a venv: not installing; "
              "run with .venv/bin/python to install them")
        return
    print(f"installing peers into {sys.prefix}: {', '.join(missing)}")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=False)
    if done.returncode:
        print(f"pip install -r {REQUIREMENTS.name} failed (exit {done.returncode}); the peers that do not import "
              "will be skipped")


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
    ap.add_argument("--skip-install", action="store_true", help="do not pip install missing peers")
    ap.add_argument("--no-micro", action="store_true", help="skip the pytest-benchmark micro-benchmarks")
    args = ap.parse_args(argv)

    if not args.skip_install:
        ensure_peers()
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
