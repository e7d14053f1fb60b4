"""The first run on a fresh machine: ``cx serve --simulate`` with an empty numba cache compiles before it opens its
ports, says so with progress, and the simulated market trades within 30 s of the venue saying it is ready.

Slow (about a minute: the whole compile), and it runs in CI like every other test. The empty cache is a fresh
``NUMBA_CACHE_DIR``, so the checkout's own cache is neither used nor disturbed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.config import DEFAULT_FIRMS
from tests.journal.test_crash_gateway import free_ports

ROOT = Path(__file__).resolve().parents[2]
READY_TO_TRADES_S = 30.0  # the promise of the README's quick start


def write_config(path: Path) -> None:
    names = ("order_entry", "admin", "market_data", "snapshots")
    lines = [f'{name} = "tcp://127.0.0.1:{port}"' for name, port in zip(names, free_ports(4), strict=True)]
    firms = "".join(f'[[firms]]\nname = "{f}"\n' for f in DEFAULT_FIRMS)
    path.write_text("[gateway]\n" + "\n".join(lines) + f"\nplaintext = true\n{firms}")


@pytest.mark.slow
def test_an_empty_compile_cache_compiles_before_the_ports_open_and_trades_within_30_s_of_ready(tmp_path):
    config = tmp_path / "venue.toml"
    write_config(config)
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())",
           "serve", "--simulate", "--config", str(config), "--duration", "300"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 420  # the compile (about 50 s here) plus the trading, with room
        while time.monotonic() < deadline and proc.poll() is None:
            if any(re.match(r"sim \+\d\d:\d\d:\d\d: .* [1-9]\d* fills", text) for _, text in lines):
                break
            time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(10)
    text = "\n".join(t for _, t in lines)
    first = [i for i, (_, t) in enumerate(lines) if "compiling the matching core (first run only" in t]
    ready = [(i, at) for i, (at, t) in enumerate(lines) if t.startswith("cx serve: ready: ")]
    assert first and ready and first[0] < ready[0][0], text
    assert any("ready in" in t for _, t in lines[first[0]:ready[0][0]]), text  # progress per compiled part
    trading = [at for at, t in lines if re.match(r"sim \+\d\d:\d\d:\d\d: .* [1-9]\d* fills", t)]
    assert trading, text
    assert trading[0] - ready[0][1] <= READY_TO_TRADES_S, text
    assert "waiting for the venue" not in text  # the simulated traders never waited: the ports opened compiled
