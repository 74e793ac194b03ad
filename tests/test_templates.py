"""The one template syntax: variables fill, defaults apply, and what the sandbox forbids, a
missing variable or a runaway loop is a TemplateError, never a hole or a hang."""

from __future__ import annotations

import time

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


@pytest.mark.parametrize("source", [
    "{{ 'x' * 10**9 }}", "{{ 10**9 * 'x' }}", "{{ ['x'] * 10**9 }}", "{{ 2 ** 999999 }}",
    "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
    "{{ 'x'.center(10**9) }}", "{{ 'x'.ljust(10**9) }}", "{{ 'x'.zfill(10**9) }}",
    "{{ 'x' | center(10**9) }}", "{{ 'x' | indent(10**9) }}", "{{ '%0999999d' % 1 }}",
    "{{ '%0999999d' | format(1) }}", "{{ '{:>999999}'.format(1) }}",
    "{{ 'a\tb'.expandtabs(10**9) }}",
])
def test_work_is_bounded_not_only_reach(source: str) -> None:
    """A text that would take unbounded time or memory is refused quickly (no hang)."""
    started = time.monotonic()
    with pytest.raises(TemplateError):
        render_text(source, {})
    assert time.monotonic() - started < 2


def test_bounded_work_keeps_ordinary_texts() -> None:
    fields = {"name": "Ann", "code": "Order 1234567 at 50%", "n": 123456789}
    assert render_text("{{ '%05d' % 42 }} {{ '%s' | format(code) }} {{ name | center(9) }}"
                       " {{ n }} {{ code | replace('%', ' percent') }} {{ 2 ** 10 }}",
                       fields) == "00042 Order 1234567 at 50%    Ann    123456789 " \
        "Order 1234567 at 50 percent 1024"
    assert render_text("{% for a in range(100) %}{% for b in range(90) %}{% endfor %}"
                       "{% endfor %}done", {}) == "done"


def test_a_syntax_error_names_the_line() -> None:
    with pytest.raises(TemplateError, match="line 2"):
        compile_text("fine\n{{ broken ")
