"""The one template syntax: variables fill, defaults apply, and what the sandbox forbids, a
missing variable or a runaway loop is a TemplateError, never a hole or a hang."""

from __future__ import annotations

import pytest

from bridge.templates import MAX_OUTPUT, TemplateError, compile_text, render_text

CUSTOMER = {"customer": {"first_name": "Mila", "name": "Mila Petrović"}}


def test_variables_and_defaults_fill() -> None:
    assert render_text("Hi {{ customer.first_name }}!", CUSTOMER) == "Hi Mila!"
    assert render_text('Hi {{ customer.nick | default("there") }}', CUSTOMER) == "Hi there"


def test_a_missing_variable_is_an_error_not_a_hole() -> None:
    with pytest.raises(TemplateError, match="missing variable"):
        render_text("We open at {{ next_open }}", CUSTOMER)


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ customer.__class__ }}x{{ customer.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
])
def test_sandbox_escapes_are_refused(source: str) -> None:
    with pytest.raises(TemplateError):
        render_text(source, CUSTOMER)


def test_loops_and_output_are_bounded() -> None:
    with pytest.raises(TemplateError, match="range"):
        render_text("{% for i in range(10**9) %}x{% endfor %}", {})
    with pytest.raises(TemplateError, match="longer than"):
        render_text("{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}", {})
    assert len(render_text("{{ 'x' * 10 }}", {})) == 10 < MAX_OUTPUT


def test_a_syntax_error_names_the_line() -> None:
    with pytest.raises(TemplateError, match="line 2"):
        compile_text("fine\n{{ broken ")
