"""Automatic answers' config (issue 21): texts that fail to render and FAQ files that cannot
be used stop `check-config`, naming the key and the fix; `bridge faq test` shows the scores;
the FAQ's matching and its recognition of a request for a person."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.auto_texts import TEXTS, builtin, check_text, duration, language_of
from bridge.faq import Faq, FaqEntry, FaqError, PersonWords, load_faq
from bridge.registry import settings_registry
from bridge.settings import ConfigError, load_settings
from tests.helpers_proc import run_cli
from tests.test_cli import plain_config

FAQ = '''
[[faq]]
questions = ["When are you open?", "What are your opening hours?"]
answer = "From 9:00 to 17:00."

[[faq]]
questions = ["Where is my parcel?", "How can I track my order?"]
answer = "Track it at https://example.com/track."
'''


def config(tmp_path: Path, extra: str) -> Path:
    path = plain_config(tmp_path / "bridge.toml", f"sqlite:///{tmp_path / 'b.db'}")
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def problems(path: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, settings_registry(), environ={})
    return {p.key: f"{p.message} | {p.fix}" for p in caught.value.problems
            if p.severity == "error"}


def test_a_text_that_cannot_render_is_a_config_error(tmp_path: Path) -> None:
    found = problems(config(tmp_path, '''
[teams.support]
closed_reply = "Back at {{ next_opn }}"
greeting = { en = "Hi {{ customer.first_name }}", sr = "Zdravo {{ customer.nme }}" }
'''))
    assert "next_opn" in found["teams.support.closed_reply"]
    assert "nme" in found["teams.support.greeting"] and "'sr'" in found["teams.support.greeting"]


def test_the_faq_file_is_checked(tmp_path: Path) -> None:
    assert "does not exist" in problems(config(tmp_path, '[faq]\nfile = "missing.toml"\n'))[
        "faq.file"]
    (tmp_path / "faq.toml").write_text('[[faq]]\nquestions = ["Hi?"]\nanswer = "{{ oops"\n',
                                       encoding="utf-8")
    found = problems(config(tmp_path, '[faq]\nfile = "faq.toml"\n'))["faq.file"]
    assert "faq[0].answer" in found
    (tmp_path / "faq.toml").write_text('[[faq]]\nquestion = ["Hi?"]\nanswer = "x"\n',
                                       encoding="utf-8")
    assert "questions" in problems(config(tmp_path, '[faq]\nfile = "faq.toml"\n'))["faq.file"]


async def test_check_config_refuses_an_faq_text_with_a_misspelt_variable(tmp_path: Path) -> None:
    """An FAQ answer or FAQ line that compiles but names an unknown variable would be a hole
    (or a failure) at the moment a customer asks: `bridge check-config` exits 1 naming it."""
    (tmp_path / "faq.toml").write_text(
        '[[faq]]\nquestions = ["Hi?"]\nanswer = "Hello {{ customer.frist_name }}"\n',
        encoding="utf-8")
    path = config(tmp_path, '[faq]\nfile = "faq.toml"\n')
    result = await run_cli(["check-config", "--config", str(path)], env={})
    assert result.code == 1 and "faq[0].answer" in result.stderr
    assert "frist_name" in result.stderr
    (tmp_path / "faq.toml").write_text(FAQ, encoding="utf-8")
    found = problems(config(tmp_path, '[faq]\nfile = "faq.toml"\n'
                                      '[faq.texts.en]\nfaq_offer = "Say {{ wrod }}"\n'))
    assert "texts.en.faq_offer" in found["faq.texts"] and "wrod" in found["faq.texts"]


def test_every_builtin_text_renders_in_every_language() -> None:
    for language, texts in TEXTS.items():
        for source in texts.values():
            check_text(source)
        assert set(texts) == set(TEXTS["en"]), language
    assert language_of("sr-Latn-RS", "en") == "sr"
    assert language_of(None, "hr") == "hr"
    assert language_of("bs", "en") == "sr"
    assert builtin("faq_offer", "de") == TEXTS["en"]["faq_offer"]  # English when none
    assert duration(600, "en") == "10 minutes" and duration(3 * 3600, "sl") == "3 ur"


def test_faq_matches_other_words_and_not_one_shared_word() -> None:
    faq = Faq([FaqEntry(questions=["When are you open?", "What are your opening hours?"],
                        answer="a"),
               FaqEntry(questions=["I forgot my password"], answer="b")])
    best = faq.best("when do you OPEN", 75)
    assert best is not None and best.entry == 0
    best = faq.best("i forgot the password to my account", 75)
    assert best is not None and best.entry == 1
    assert faq.best("Šifra? Zaboravio sam šifru", 75) is None
    assert faq.best("open", 75) is None
    assert faq.best("", 0) is None


def test_person_words() -> None:
    asks = PersonWords(["daj mi šefa"])
    for text in ("agent", "Agent!", "HUMAN please", "Želim osobu", "operater", "čovek",
                 "človek", "I want to talk to a person", "daj mi sefa"):
        assert asks(text), text
    assert not asks("The human resources department sent me an email about it")
    assert not asks("hello")


async def test_faq_test_command_prints_scores(tmp_path: Path) -> None:
    (tmp_path / "faq.toml").write_text(FAQ, encoding="utf-8")
    path = config(tmp_path, '[faq]\nfile = "faq.toml"\nthreshold = 75\n')
    result = await run_cli(["faq", "test", "where is my package", "--config", str(path),
                            "--format", "json"], env={})
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["answers"] is True
    assert report["matches"][0]["question"] == "Where is my parcel?"
    assert report["matches"][0]["score"] >= 75
    result = await run_cli(["faq", "test", "can I pay by card", "--config", str(path)], env={})
    assert result.code == 0 and "no answer" in result.stdout
    result = await run_cli(["check-config", "--config", str(path)], env={})
    assert result.code == 0, result.stderr
    for question in ("\u202e\x01 ž🙂", "where is my package " * 5000):
        result = await run_cli(["faq", "test", question, "--config", str(path),
                                "--format", "json"], env={})
        assert result.code == 0 and json.loads(result.stdout)["answers"] is False, result.stderr


@given(st.text(max_size=300))
def test_any_text_is_matched_or_not_without_error(text: str) -> None:
    faq = Faq([FaqEntry(questions=["When are you open?", "Čuvate li podatke?"], answer="a")])
    for match in faq.matches(text):
        assert 0 <= match.score <= 100
    assert isinstance(PersonWords([])(text), bool)


async def test_check_config_names_a_hostile_faq_file_in_one_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, arrays nested thousands deep, a directory: exit 1, one error
    line naming `faq.file`, no traceback."""
    path = config(tmp_path, '[faq]\nfile = "faq.toml"\n')
    faq = tmp_path / "faq.toml"
    for content in (b"\xff\xfe\x00[[faq]]", b"a = " + b"[" * 5000 + b"]" * 5000,
                    b'faq = [{questions = ["\\u202e"], answer = 5}]', None):
        if content is None:
            faq.unlink()
            faq.mkdir()
        else:
            faq.write_bytes(content)
        result = await run_cli(["check-config", "--config", str(path)], env={})
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.code == 1 and len(errors) == 1 and "faq.file" in errors[0], result.stderr
        assert "Traceback" not in result.stderr


@given(st.text(max_size=300))
def test_any_faq_file_loads_or_names_its_problem(content: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "faq.toml"
        path.write_text(content, encoding="utf-8")
        try:
            load_faq(path)
        except FaqError as exc:
            assert exc.fix and str(exc)


def test_a_long_text_matches_nothing_and_asks_for_nobody() -> None:
    from bridge.faq import MAX_QUESTION_CHARS
    faq = Faq([FaqEntry(questions=["When are you open?"], answer="9-17")])
    question = "when are you open "
    padded = question + " " * (MAX_QUESTION_CHARS - len(question))
    assert faq.best(padded, 80) is not None and PersonWords([])("agent" + " " * 1995)
    assert faq.matches(padded + "?") == [] and not PersonWords([])("agent" + " " * 1996)
