"""Helpers for tests that run `bridge` as a real subprocess (crash, signals, CLI contract).

Waiting is always asynchronous: the stand-ins the subprocess talks to run in the test's own
event loop, so blocking it would starve the bridge under test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

BRIDGE = [sys.executable, "-m", "bridge"]
# The checkout under test, first on the child's path: not whichever one `pip install -e` last named.
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A loopback port that was free a moment ago (the subprocess binds it itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_CONFIG"}
    env.update(extra)
    env["PTB_TIMEDELTA"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH")) if p)
    return env


def db_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the store with a separate connection: only what is committed."""
    conn = sqlite3.connect(db, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


async def run_cli(args: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None,
                  timeout: float = 30.0) -> CliResult:
    """Run `python -m bridge ARGS` to completion without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        *BRIDGE, *args, env=child_env(env), cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = asyncio.create_task(proc.stdout.read()), asyncio.create_task(proc.stderr.read())
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"`bridge {' '.join(args)}` still running after {timeout}s "
                             f"(killed); stderr:\n{(await err).decode()}") from None
    assert proc.returncode is not None
    return CliResult(proc.returncode, (await out).decode(), (await err).decode())


class BridgeProcess:
    """`python -m bridge run --config PATH` in the background, output kept in files."""

    def __init__(self, config: Path, env: Mapping[str, str], logs: Path, port: int,
                 cwd: Path | None = None) -> None:
        self.config = config
        self.env = child_env(env)
        self.logs = logs
        self.port = port
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.runs += 1
        with (self.logs / f"bridge-{self.runs}.out").open("wb") as out, \
                (self.logs / f"bridge-{self.runs}.err").open("wb") as err:
            self.proc = subprocess.Popen([*BRIDGE, "run", "--config", str(self.config)],
                                         env=self.env, cwd=self.cwd, stdout=out, stderr=err)

    def stderr(self) -> str:
        return (self.logs / f"bridge-{self.runs}.err").read_text(errors="replace")

    async def wait_healthy(self, timeout: float = 20.0) -> dict[str, Any]:
        """Poll GET /healthz until it answers 200; fail early if the process died."""
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"bridge exited with {self.proc.returncode} before "
                                         f"it was healthy; stderr:\n{self.stderr()}")
                try:
                    async with session.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            body: dict[str, Any] = await resp.json()
                            return body
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if loop.time() > deadline:
                    raise AssertionError(f"bridge not healthy after {timeout}s; stderr:\n"
                                         f"{self.stderr()}")
                await asyncio.sleep(0.05)

    async def wait_exit(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (code := self.proc.poll()) is None:
            if loop.time() > deadline:
                raise AssertionError(f"bridge still running {timeout}s later")
            await asyncio.sleep(0.02)
        self.proc = None
        return code

    async def signal(self, sig: signal.Signals, timeout: float = 10.0) -> int:
        """Send `sig` and return the exit code once the process is gone."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return await self.wait_exit(timeout)

    def cleanup(self) -> None:
        """Kill a process a failing test left behind (never raises)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
