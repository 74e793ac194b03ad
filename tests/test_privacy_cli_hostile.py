"""`bridge customer find|export|erase` and `bridge audit` given hostile arguments: ids too big
for the database, negative or non-numeric ids, unicode, `--since` junk.  Each answers exit 1
or 2 with one line on stderr, no traceback, and writes nothing (no audit entry, no file)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from bridge.cli import main
from tests.conftest import HarnessFactory, bridge_env

HUGE = str(10**40)


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = await asyncio.to_thread(main, list(argv))
    except SystemExit as exc:  # argparse refuses before `main` returns
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_refusal(code: int, err: str) -> None:
    assert code in (1, 2), (code, err)
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(("error:", "bridge", "usage:")) or ": error:" in last, err


@pytest.mark.backends("sqlite")
async def test_hostile_arguments_are_refused_and_write_nothing(
        make_harness: HarnessFactory, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    h = await make_harness()
    for key, value in bridge_env(h.slack).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BRIDGE_CONFIG", str(tmp_path / "bridge.toml"))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert await h.customer_says(4242, "hello", first_name="Ann") == 200
    await h.thread_of(4242)
    out_file = tmp_path / "x.json"
    for argv in (["customer", "export", HUGE], ["customer", "export", "-" + HUGE],
                 ["customer", "export", HUGE, "--out", str(out_file)],
                 ["customer", "export", "-5"], ["customer", "export", "٣"],
                 ["customer", "export", "1e3"], ["customer", "export", "１２"],
                 ["customer", "erase", HUGE, "--yes"], ["customer", "erase", "-1", "--yes"],
                 ["customer", "erase", HUGE], ["customer", "erase", "abc", "--yes"],
                 ["audit", "--since", "9" * 400 + "d"], ["audit", "--since", "-5d"],
                 ["audit", "--since", "ünïcødé"], ["audit", "--since", "2026-13-45"],
                 ["audit", "--since", "\x00"], ["audit", "--since", "99999-01-01"]):
        code, _, err = await cli(capsys, *argv)
        one_line_refusal(code, err)
        assert not out_file.exists(), argv
    # find takes free text: hostile text finds nobody and fails nothing.
    for query in (HUGE, "-1", "ünïcødé 🙂", "%", "_", "'; DROP TABLE customers; --", "x" * 10_000):
        code, out, err = await cli(capsys, "customer", "find", query)
        assert (code, out.strip(), err) == (0, "no customer matches", ""), query
    assert h.rows("SELECT action FROM audit_log") == []
    assert h.rows("SELECT text FROM messages") == [("hello",)]
