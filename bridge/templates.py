"""One template syntax for every customer-facing text in config and for canned replies:
Jinja2 in its sandbox (`{{ customer.first_name | default("there") }}`).

A template sees only the variables it is given (plain dicts, strings and numbers: no objects of
ours, so no attribute reaches further); anything unsafe, a missing variable or output past
`MAX_OUTPUT` characters is a `TemplateError` naming what went wrong, never a hole sent to a
customer.  Compile at `check-config` time (`compile_text`) so a broken text stops the bridge
from starting rather than from answering.
"""

from __future__ import annotations

import re
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


MAX_WORK = 10 * MAX_RANGE  # items all `range()` calls of one rendering may produce
# a width or precision past MAX_OUTPUT in a %-format or a format field ("%0999999d", "{:>999999}")
_WIDE = re.compile(r"%[-+ #0]*(\d{6,}|\d*\.\d{6,})|\{[^{}]*:[^{}]*\d{6,}[^{}]*\}")
_SIZED = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "format",
                    "indent", "wordwrap", "truncate", "replace"})


def _bounded(args: tuple[Any, ...], kwargs: Mapping[str, Any], fmt: object = None) -> None:
    """Refuse what asks for more output than a text may have: a size or count past
    MAX_OUTPUT (`"x".center(10**9)`), or such a width in the format string `fmt`
    (`"%0999999d"|format(1)`)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT:
            raise SecurityError(f"a size larger than {MAX_OUTPUT}")
    if isinstance(fmt, str) and _WIDE.search(fmt):
        raise SecurityError(f"a format width larger than {MAX_OUTPUT}")


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, bounded in work as well as in reach: `range()` items per rendering,
    sizes asked of string methods and filters, and `*`, `**`, `%` on big operands."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.work = 0  # range() items produced by the current rendering
        self.filters = {name: (_guarded(name, f) if name in _SIZED else f)
                        for name, f in self.filters.items()}

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if __obj is range or __obj is self.globals.get("range"):  # the sandbox's safe_range
            if any(isinstance(a, int) and abs(a) > MAX_RANGE for a in args):
                raise SecurityError(f"range() larger than {MAX_RANGE}")
            self.work += len(range(*args))
            if self.work > MAX_WORK:
                raise SecurityError(f"loops over more than {MAX_WORK} items in all")
        elif getattr(__obj, "__name__", "") in _SIZED:
            _bounded(args, kwargs, getattr(__obj, "__self__", None)
                     if __obj.__name__ == "format" else None)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("an exponent larger than 64")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (isinstance(seq, (str, list, tuple)) and isinstance(count, int)
                        and len(seq) * count > MAX_OUTPUT):
                    raise SecurityError(f"a repetition longer than {MAX_OUTPUT}")
        if operator == "%":
            _bounded((), {}, left)
        return super().call_binop(context, operator, left, right)


def _guarded(name: str, function: Any) -> Any:
    """The filter `name`, first refusing sizes past MAX_OUTPUT (see `_bounded`)."""
    def guarded(*args: Any, **kwargs: Any) -> Any:
        values = [a for a in args if isinstance(a, (str, int, float))]
        _bounded(tuple(values), kwargs, values[0] if name == "format" and values else None)
        return function(*args, **kwargs)
    if hasattr(function, "jinja_pass_arg"):  # keep what Jinja passes first (env, context)
        guarded.jinja_pass_arg = function.jinja_pass_arg  # type: ignore[attr-defined]
    return guarded


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
        self._env.work = 0
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
