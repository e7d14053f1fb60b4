"""The Python example in README.md runs as written (so it cannot rot).

The first ```python block of README.md is extracted and exec()'d in a fresh
namespace. The example asserts its own results (trades at the expected prices,
the expected rejects); here we additionally check that it ran to the end and
printed trades.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def first_python_block(text: str) -> str:
    m = re.search(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.DOTALL | re.MULTILINE)
    assert m is not None, "README.md has no ```python block"
    return m.group(1)


def test_readme_has_a_python_example():
    code = first_python_block(README.read_text(encoding="utf-8"))
    assert "Exchange(" in code and "submit_batch" in code


def test_readme_python_example_runs_and_trades(capsys):
    code = first_python_block(README.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, str(README), "exec"), namespace)

    from engine.exchange import Exchange
    from engine.records import Trade

    assert isinstance(namespace.get("ex"), Exchange), "the example should build an Exchange named ex"
    trades = [e for e in [*namespace["events"], *namespace["batch_events"]] if isinstance(e, Trade)]
    assert len(trades) == 3
    printed = capsys.readouterr().out
    assert "Trade(" in printed and "LevelView(" in printed
