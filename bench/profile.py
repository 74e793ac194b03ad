"""Optional py-spy sampling of the bridge during its first wrk run (``bench.run --profile``).

Samples are taken without pausing the process (``--nonblocking``), by default only of the
thread holding the GIL (``--profile``: where the one core a Python process can use goes), or
of every busy thread (``--profile=wall``: SQLite's thread waiting in fsync counts too).  They
are folded into three short tables: the functions most often on top of the stack (self time),
the functions most often anywhere on the stack (inclusive), and the packages of the
top-of-stack code.  The folded stacks stay in bench/results/profile-<variant>.folded.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")
_THREAD = re.compile(r"^thread \((?P<id>\w+)\)(?:: (?P<name>.*))?$")
# Frames every sample of a thread has (entry points): left out of the inclusive table.
_ROOT_FILES = ("<frozen runpy>", "threading.py", "bridge/__main__.py", "bridge/cli.py",
               "aiosqlite/core.py")
# uvloop runs in C: samples whose innermost Python frame is the one that started the loop are
# time spent in the event loop itself (polling, socket reads/writes, callbacks in C).
_LOOP_FRAME = "_run_async (bridge/cli.py)"


def available() -> bool:
    return shutil.which("py-spy") is not None


async def record(pid: int, duration: float, output: Path,
                 gil: bool = True) -> asyncio.subprocess.Process:
    """Start py-spy on `pid` for `duration` seconds, writing folded ("raw") stacks.  With `gil`
    only the thread holding the GIL is sampled: where the one core a Python process can use
    goes.  Without it, every thread not idle (sqlite's thread in fsync counts as busy)."""
    return await asyncio.create_subprocess_exec(
        "py-spy", "record", "--pid", str(pid), "--duration", str(max(1, int(duration))),
        "--rate", "100", "--nonblocking", "--threads", "--nolineno", "--format", "raw",
        *(["--gil"] if gil else []),
        "--output", str(output), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, stdin=asyncio.subprocess.DEVNULL)


def _package(file: str) -> str:
    name = file.replace("\\", "/")
    if name.startswith("<"):
        return name
    head = name.split("/", 1)[0]
    if head in ("bridge", "connectors", "storage"):
        return f"{head}/{name.split('/', 1)[-1]}" if "/" in name else head
    return head.removesuffix(".py")


@dataclass
class Profile:
    samples: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    packages: Counter[str] = field(default_factory=Counter)

    def top(self, counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, round(100 * count / self.samples, 1))
                for name, count in counter.most_common(n)] if self.samples else []

    def as_dict(self, n: int = 15) -> dict[str, object]:
        return {"samples": self.samples, "threads_pct": self.top(self.threads, 5),
                "self_pct": self.top(self.own, n), "inclusive_pct": self.top(self.inclusive, n),
                "packages_pct": self.top(self.packages, 10)}


def summarize(folded: Path) -> Profile:
    prof = Profile()
    if not folded.is_file():
        return prof
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = "?"
        found_thread = _THREAD.match(frames[0]) if frames else None
        if found_thread:
            thread = found_thread["name"] or found_thread["id"]
            frames.pop(0)
        names: list[str] = []
        files: list[str] = []
        for frame in frames:
            found = _FRAME.match(frame)
            func, file = (found["func"], found["file"]) if found else (frame, "?")
            names.append(f"{func} ({file})")
            files.append(file)
        if not names:
            continue
        prof.samples += count
        prof.threads[thread] += count
        own = names[-1]
        prof.own[f"{own}: in uvloop's C code" if own == _LOOP_FRAME else own] += count
        prof.packages[_package(files[-1])] += count
        for name, file in set(zip(names, files, strict=True)):
            if file not in _ROOT_FILES:
                prof.inclusive[name] += count
    return prof


def render(prof: Profile, n: int = 12) -> str:
    if not prof.samples:
        return "  (no samples: is py-spy allowed to attach? it needs ptrace rights)"
    lines = [f"  {prof.samples} busy samples; by thread: " + ", ".join(
        f"{name} {pct}%" for name, pct in prof.top(prof.threads, 4))]
    lines.append("  top of stack (self):")
    lines += [f"    {pct:5.1f}%  {name}" for name, pct in prof.top(prof.own, n)]
    lines.append("  on the stack (inclusive):")
    lines += [f"    {pct:5.1f}%  {name}" for name, pct in prof.top(prof.inclusive, n)]
    lines.append("  top of stack by package: " + ", ".join(
        f"{name} {pct}%" for name, pct in prof.top(prof.packages, 10)))
    return "\n".join(lines)
