"""One template syntax for every customer-facing text in config and for canned replies:
Jinja2 in its sandbox (`{{ customer.first_name | default("there") }}`).

A template sees only the variables it is given (plain dicts, strings and numbers: no objects of
ours, so no attribute reaches further); anything unsafe, a missing variable or output past
`MAX_OUTPUT` characters is a `TemplateError` naming what went wrong, never a hole sent to a
customer.  Compile at `check-config` time (`compile_text`) so a broken text stops the bridge
from starting rather than from answering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, UndefinedError
from jinja2 import TemplateError as JinjaError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT = 20_000  # characters; longer than any platform takes in one message
MAX_RANGE = 1_000  # `range()` inside a template


class TemplateError(ValueError):
    """A text that cannot be rendered safely; `str()` says why, for an agent or an admin."""


class _Environment(ImmutableSandboxedEnvironment):
    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if __obj is range and args and any(isinstance(a, int) and abs(a) > MAX_RANGE
                                           for a in args):
            raise SecurityError(f"range() larger than {MAX_RANGE}")
        return super().call(__context, __obj, *args, **kwargs)


def _environment() -> _Environment:
    return _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass(frozen=True)
class Text:
    """A compiled customer-facing text."""

    source: str
    _env: _Environment
    _template: Any

    def render(self, variables: Mapping[str, object]) -> str:
        """The filled text; `TemplateError` for a missing variable, an unsafe operation or
        output past MAX_OUTPUT."""
        parts: list[str] = []
        size = 0
        try:
            for chunk in self._template.generate(dict(variables)):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise TemplateError(f"the text is longer than {MAX_OUTPUT} characters")
                parts.append(chunk)
        except UndefinedError as exc:
            raise TemplateError(f"missing variable: {exc.message}") from None
        except SecurityError as exc:
            raise TemplateError(f"refused by the template sandbox: {exc}") from None
        except JinjaError as exc:
            raise TemplateError(f"cannot render: {exc.message or exc}") from None
        except (TypeError, ValueError, ArithmeticError, OverflowError, RecursionError) as exc:
            raise TemplateError(f"cannot render: {exc}") from None
        return "".join(parts).strip()


def compile_text(source: str) -> Text:
    """Parse a template; `TemplateError` (with the line) when its syntax is wrong."""
    env = _environment()
    try:
        template = env.from_string(source)
    except JinjaError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise TemplateError(f"template syntax{where}: {exc.message or exc}") from None
    return Text(source, env, template)


def render_text(source: str, variables: Mapping[str, object]) -> str:
    """Compile and render in one step."""
    return compile_text(source).render(variables)
