"""Regenerate the README's picture of ``cx web``: ``.venv/bin/python -m tests.web.screenshot [docs/web.png]``.

Starts the test venue (engine, gateway, feed publisher, web bridge, all on free
loopback ports), runs ``tests.web.conftest.realistic_market`` over 24 delivery
hours of four accelerators and ``auction_market`` (an auction, then the next
one's indicative prices), and screenshots the page at 1280 x 1280 with
headless Chromium (which must be installed: ``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.web.conftest import WebVenue, auction_market, realistic_market, run_chromium

FOCUS = "H100.US-EAST.FIRM.2026-12-01T18"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else Path(__file__).resolve().parents[2] / "docs" / "web.png").resolve()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 2
    venue = WebVenue()
    try:
        hours = [f"2026-12-01T{h:02d}" for h in range(10, 24)] + [f"2026-12-02T{h:02d}" for h in range(0, 10)]
        symbols = realistic_market(venue, hours)
        venue.settle(symbols)
        auction_market(venue, symbols)
        with tempfile.TemporaryDirectory() as profile:
            run_chromium(chromium, f"{venue.server.url}?transport=poll&wait=0.2&gap=400#{FOCUS}", Path(profile),
                         f"--screenshot={out}", "--window-size=1280,1280", budget_ms=3000)
    finally:
        venue.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
