"""The README's two commands stay true: CI runs exactly its test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fenced_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```\n(.*?)```", readme, re.S)]


def test_readme_starts_with_the_demo_and_test_commands() -> None:
    demo, tests = fenced_commands()[:2]
    assert demo == "pip install -e . && bridge demo"
    assert "\n" not in tests and "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    tests = fenced_commands()[1]
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in script
