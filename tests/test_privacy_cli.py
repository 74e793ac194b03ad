"""`bridge customer` and `bridge audit` at their edges: a zip with the files the bridge holds,
an erasure that is not confirmed, unknown ids, `--since`.  Run once (SQLite): what they do
to the store is tested on both stores in tests/test_privacy.py."""

from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.cli_privacy import since_epoch
from storage.base import StoreError
from tests.conftest import HarnessFactory, bridge_env


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.backends("sqlite")
async def test_cli_edges(make_harness: HarnessFactory, capsys: pytest.CaptureFixture[str],
                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = await make_harness()
    for key, value in bridge_env(h.slack).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BRIDGE_CONFIG", str(tmp_path / "bridge.toml"))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    assert await h.customer_says(4242, "hello", first_name="Ann", username="annlee") == 200
    await h.thread_of(4242)
    conv = int(h.rows("SELECT id FROM conversations")[0][0])
    customer = int(h.rows("SELECT customer_id FROM conversations")[0][0])
    await h.bridge.store.put_media("t" * 32, "invoice.pdf", "application/pdf", b"%PDF-1",
                                   time.time(), time.time() + 60, conv)

    code, out, _ = await cli(capsys, "customer", "find", "@annlee")
    assert code == 0 and f"customer {customer}" in out and "@annlee" in out
    code, out, _ = await cli(capsys, "customer", "find", "nobody at all")
    assert (code, out.strip()) == (0, "no customer matches")

    zipped = tmp_path / "ann.zip"
    code, out, _ = await cli(capsys, "customer", "export", str(customer), "--with-files",
                             "--out", str(zipped))
    assert code == 0, out
    with zipfile.ZipFile(zipped) as archive:
        doc = json.loads(archive.read("customer.json"))
        [file] = doc["files"]
        assert archive.read(file["path"]) == b"%PDF-1"
    assert file["path"] == "files/0000-invoice.pdf"
    code, _, err = await cli(capsys, "customer", "export", str(customer), "--with-files")
    assert code == 2 and "--out" in err
    code, _, err = await cli(capsys, "customer", "export", str(customer), "--out", str(zipped))
    assert code == 1 and "exists already" in err
    # Only the export that happened is in the audit log, not the two refused.
    assert h.rows("SELECT action FROM audit_log") == [("export",)]
    code, _, err = await cli(capsys, "customer", "export", "999")
    assert code == 1 and "no customer 999" in err

    code, _, err = await cli(capsys, "customer", "erase", str(customer))
    assert code == 2 and "--yes" in err
    assert h.rows("SELECT text FROM messages") == [("hello",)]  # nothing erased
    code, _, err = await cli(capsys, "customer", "erase", "999", "--yes")
    assert code == 1

    code, out, _ = await cli(capsys, "audit", "--since", "1h")
    assert " export " in out and f"customer={customer}" in out
    code, _, err = await cli(capsys, "audit", "--since", "yesterday-ish")
    assert code == 1 and "30d" in err


def test_since_reads_durations_and_dates() -> None:
    assert since_epoch("30d", 100 * 86400.0) == 70 * 86400.0
    assert since_epoch("12h", 86400.0) == 43200.0
    assert since_epoch("1970-01-02", 0) == 86400.0
    assert since_epoch("1970-01-02T00:00:00+01:00", 0) == 82800.0
    with pytest.raises(StoreError):
        since_epoch("soon", 0)
