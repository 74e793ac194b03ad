"""Subprocess plumbing for the benchmark: start, wait for readiness, sample /proc, stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port that was free a moment ago (the bridge's config needs a number up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def children_cpu_seconds() -> float:
    """CPU time of reaped children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak RSS) in MiB."""
    found: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return {"rss_mib": round(found.get("VmRSS", 0.0), 1),
            "peak_rss_mib": round(found.get("VmHWM", 0.0), 1)}


@dataclass
class Proc:
    name: str
    proc: asyncio.subprocess.Process
    log: Path
    ready_line: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.returncode is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Procs:
    """Every process the benchmark started, stopped in reverse order (also on error)."""

    workdir: Path
    running: list[Proc] = field(default_factory=list)

    async def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
                    ready_prefix: str | None = "READY", timeout: float = 20.0,
                    cwd: Path | None = None, cpus: set[int] | None = None) -> Proc:
        """Start `argv` (on `cpus` only, if given); with `ready_prefix`, wait for that first
        line on stdout."""
        if cpus:
            argv = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv]
        log = self.workdir / f"{name}.log"
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE if ready_prefix else err, stderr=err,
                stdin=asyncio.subprocess.DEVNULL, env={**os.environ, **(env or {})},
                cwd=cwd or self.workdir)
        entry = Proc(name, proc, log)
        self.running.append(entry)
        if ready_prefix:
            assert proc.stdout is not None
            try:
                line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
            except TimeoutError:
                raise RuntimeError(
                    f"{name} not ready after {timeout}s:\n{entry.log_tail()}") from None
            if not line.startswith(ready_prefix):
                raise RuntimeError(f"{name} failed to start ({line!r}):\n{entry.log_tail()}")
            entry.ready_line = line.strip()
        return entry

    async def stop(self, entry: Proc, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL.  Returns the exit code."""
        if entry.alive():
            with contextlib.suppress(ProcessLookupError):
                entry.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(entry.proc.wait(), timeout)
            except TimeoutError:
                print(f"  {entry.name} ignored SIGTERM for {timeout}s; killing it",
                      file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    entry.proc.kill()
                await entry.proc.wait()
        if entry in self.running:
            self.running.remove(entry)
        return entry.proc.returncode

    async def stop_all(self) -> None:
        for entry in reversed(list(self.running)):
            await self.stop(entry, timeout=5.0)


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]
