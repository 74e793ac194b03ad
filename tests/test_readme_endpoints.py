"""Every route the bridge serves has a row in the README's "HTTP endpoints" table."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import Harness

README = Path(__file__).resolve().parent.parent / "README.md"


async def test_every_route_has_a_row_in_the_readme(hc: Harness) -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### HTTP endpoints"):text.index("### Promises for bad input")]
    rows = set(re.findall(r"^\| `([A-Z]+ /[^`]*)`", table, re.MULTILINE))
    served = {route.method + " " + re.sub(r"{(\w+)}", r"<\1>", route.resource.canonical)
              for route in hc.bridge.web_app.router.routes()
              if route.method != "HEAD" and route.resource is not None}
    assert {"POST /webhooks/twilio", "GET /webhooks/messenger", "GET /metrics"} <= served
    assert sorted(served - rows) == []
