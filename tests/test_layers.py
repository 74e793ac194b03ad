"""The folders import one way: vocabulary ← connectors, storage ← the core ← the composition root.

Every import statement of every module (top level, inside functions, and `import_module` with a
literal name) is read from the source with `ast`, so a lazy import against the direction counts.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("vocab", "connectors", "storage", "bridge")
# The composition root: the only modules that name concrete stores and connectors.
COMPOSITION_ROOT = frozenset({
    "bridge.app", "bridge.cli", "bridge.demo", "bridge.registry", "bridge.settings",
    "bridge.__main__",
})
# What the core (the rest of `bridge`) may import from the layer below: the interfaces only.
INTERFACES = frozenset({"connectors.base", "storage.base"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(source: str, module: str, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of each import of ours in `source`."""
    package = module if is_package else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            # `from connectors import telegram` imports the submodule, when it is one
            names = [f"{base}.{alias.name}" if (ROOT / base.replace(".", "/") / alias.name).exists()
                     or (ROOT / base.replace(".", "/") / f"{alias.name}.py").exists() else base
                     for alias in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
              and getattr(node.func, "id", getattr(node.func, "attr", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        else:
            continue
        for name in names:
            if name.split(".")[0] in OURS:
                yield node.lineno, name


def violation(importer: str, target: str) -> str | None:
    """Why `importer` may not import `target`, or None when it may."""
    top, dest = importer.split(".")[0], target.split(".")[0]
    if dest == "vocab":
        return None
    if top == "vocab":
        return "the vocabulary imports nothing of ours"
    if top == "connectors":
        if dest != "connectors":
            return "a connector imports only the vocabulary, connectors.base and connectors.meta"
        mine, theirs = importer.split(".")[:2], target.split(".")[:2]
        shared = (["connectors", "base"], ["connectors"], ["connectors", "meta"])
        if theirs not in shared and mine != theirs:
            return "a connector never imports a sibling connector"
        return None
    if top == "storage":
        return None if dest == "storage" else "storage imports only the vocabulary"
    if top == "bridge":
        if importer.startswith("bridge.standins") and not target.startswith("bridge.standins"):
            return "the stand-ins import nothing of the bridge they stand in for"
        if dest == "bridge" or importer in COMPOSITION_ROOT:
            return None
        if any(target == i or target.startswith(i + ".") for i in INTERFACES):
            return None
        return f"the core imports only the interfaces ({', '.join(sorted(INTERFACES))})"
    return None


def violations() -> list[str]:
    found = []
    for top in OURS:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = module_name(path)
            source = path.read_text(encoding="utf-8")
            for line, target in imported(source, name, path.name == "__init__.py"):
                why = violation(name, target)
                if why is not None:
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {target}: {why}")
    return found


def test_every_import_goes_one_way() -> None:
    assert violations() == []


@pytest.mark.parametrize(("importer", "target"), [
    ("vocab.models", "bridge.settings"),
    ("storage.ingest", "bridge.console.render"),
    ("storage.links", "connectors.base"),
    ("connectors.base", "storage.base"),
    ("connectors.twilio.connector", "connectors.telegram.parse"),
    ("connectors.email.parse", "bridge.app"),
    ("bridge.router", "storage.sqlite"),
    ("bridge.outbox", "connectors.telegram"),
    ("bridge.standins.slack", "bridge.app"),
])
def test_the_check_refuses_an_import_against_the_direction(importer: str, target: str) -> None:
    assert violation(importer, target) is not None


def test_the_check_reads_lazy_and_relative_imports() -> None:
    source = ("def f():\n    from bridge.console import render\n"
              "def g():\n    import_module('connectors.telegram.connector')\n"
              "from .base import Store\n")
    assert sorted(t for _, t in imported(source, "storage.links")) == [
        "bridge.console.render", "connectors.telegram.connector", "storage.base"]


@pytest.mark.parametrize(("importer", "target"), [
    ("connectors.telegram.connector", "connectors.telegram.outbound"),
    ("connectors.twilio.connector", "connectors.base"),
    ("storage.sqlite", "storage.sqlstore"),
    ("bridge.app", "storage.sqlite"),
    ("bridge.registry", "connectors.email.connector"),
    ("bridge.delivery", "storage.base"),
    ("bridge.console.slack", "vocab.mrkdwn"),
])
def test_the_check_allows_the_direction(importer: str, target: str) -> None:
    assert violation(importer, target) is None


def test_importing_the_core_loads_no_connector() -> None:
    """The outbox, the router and the console load no platform SDK: the registry imports a
    connector only when the config enables it."""
    code = ("import sys, bridge.outbox, bridge.router, bridge.delivery, bridge.console.events\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('telegram', 'twilio', 'aioimaplib', 'aiosmtplib') or m.startswith('connectors.')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "['connectors.base']"
