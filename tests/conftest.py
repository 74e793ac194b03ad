"""Shared fixtures: stand-ins on ephemeral ports and the real bridge wired to them."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import settings

from bridge.app import Bridge
from bridge.logs import NOISY
from bridge.registry import settings_registry
from bridge.settings import load_settings
from bridge.standins import SlackEventSender, SlackStandin, TelegramStandin
from bridge.standins.config import Secrets, TomlValue, standin_config
from tests.helpers_pg import PG_URL, fresh_schema
from tests.helpers_rows import RowReader, Rows, reader_for
from tests.waiting import poll

# Fixtures shared by several test modules: the Twilio tests' clock, stand-in and bridge; the
# Graph API stand-ins (Messenger, WhatsApp Cloud); the email tests' Dovecot and SMTP receiver.
pytest_plugins = ["tests.helpers_twilio", "tests.helpers_messenger", "tests.fixtures_email",
                  "tests.helpers_continuity", "tests.browser", "tests.helpers_whatsapp"]

# Hypothesis: a fixed seed in CI (`ci`, the default); maintainers run `HYPOTHESIS_PROFILE=long`
# for many more examples of the parser and endpoint properties.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("long", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# python-telegram-bot: opt in to timedelta durations, as `bridge` does at startup.
os.environ["PTB_TIMEDELTA"] = "1"

CHANNEL = "C0SUPPORT1"
SIGNING_SECRET = "test-signing-secret"
WEBHOOK_SECRET = "test-webhook-secret"
AGENT = "U0AGENT1"
AGENT_NAME = "Dana"
TG_TOKEN = "123456:STANDIN"
BACKENDS = ("sqlite", "postgres")


# Fixtures that start or reach a server a contributor without root may not have.
SERVICE_FIXTURES = frozenset({"dovecot", "dovecot_server", "private_dovecot", "browser"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--without-services", action="store_true",
        help="deselect (and count) the tests that need PostgreSQL or Dovecot: what runs "
             "without root or Debian's packages; the full suite (the README's test command) "
             "runs everything")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backends(*names): run the harness on these stores only (default: all);"
                   " say why next to it")
    config.addinivalue_line(
        "markers",
        "services: the test needs PostgreSQL, Dovecot or Chromium (see --without-services)")
    config.addinivalue_line(
        "markers", "logs_secrets: the test logs a secret on purpose (to check the redaction)")


def needs_services(item: pytest.Item) -> bool:
    if item.get_closest_marker("services") is not None:
        return True
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "postgres" in callspec.id.split("-"):
        return True
    return bool(SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--without-services"):
        return
    dropped = [item for item in items if needs_services(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not needs_services(item)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses the harness runs once per store backend, ids `sqlite`/`postgres`,
    unless a `backends(...)` marker pins it."""
    if "store_backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = list(marker.args) if marker else list(BACKENDS)
    if not names or not set(names) <= set(BACKENDS):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: backends{tuple(names)}:"
                                f" expected some of {BACKENDS}")
    metafunc.parametrize("store_backend", names, ids=names, indirect=True)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # A bridge restarted on the same port (the web chat's restart test) must not wait out
    # the old connections' TIME-WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


# Short timeouts and retries so failure tests finish quickly.
TEST_OVERRIDES: dict[str, dict[str, TomlValue]] = {
    "server": {"max_body_bytes": 65536, "shutdown_timeout": 5},
    "slack": {"request_timeout": 2},
    "outbox": {"base_delay": 0.05, "max_delay": 0.5, "max_attempts": 3},
    "connectors.telegram": {"request_timeout": 2},
}


def write_config(path: Path, *, port: int, db: Path, slack: SlackStandin,
                 telegram: TelegramStandin,
                 overrides: Mapping[str, Mapping[str, TomlValue]] | None = None) -> Path:
    """A config for the stand-ins with secrets from the environment (see `bridge_env`)."""
    tables = {table: dict(values) for table, values in TEST_OVERRIDES.items()}
    for table, values in (overrides or {}).items():
        tables.setdefault(table, {}).update(values)
    path.write_text(standin_config(
        port=port, db=db, channel=CHANNEL, slack_api_url=slack.base_url,
        telegram_api_url=telegram.base_url, telegram_file_url=telegram.file_base_url,
        secrets=Secrets.from_env(), overrides=tables,
    ), encoding="utf-8")
    return path


def bridge_env(slack: SlackStandin) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": slack.bot_token or "", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "TELEGRAM_BOT_TOKEN": TG_TOKEN, "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET}


@dataclass
class Harness:
    """The real bridge, in-process, between a Slack stand-in and a Telegram stand-in."""

    slack: SlackStandin
    telegram: TelegramStandin
    session: aiohttp.ClientSession
    bridge: Bridge
    port: int
    agent: SlackEventSender
    reader: RowReader  # the store the bridge was configured with, SQLite or PostgreSQL
    threads: dict[int, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> Rows:
        """Read the store with a separate connection: what is committed, nothing else.
        `?` placeholders, on either backend."""
        return self.reader.rows(sql, params)

    async def wait_rows(self, sql: str, expected: Rows, timeout: float = 5.0) -> Rows:
        """Poll until a query returns `expected` (the outbox commits just after the API call);
        fail with the last rows read if it does not within `timeout`."""
        async def read() -> Rows:
            return self.rows(sql)
        return await poll(read, lambda got: got == expected,
                          f"{sql!r} to return {expected!r}", timeout)

    async def drained(self, timeout: float = 5.0) -> None:
        """Wait until no outbox row is pending: every message and notice the inputs so far
        caused was sent (or given up on). The webhooks and Slack events commit their outbox
        rows before they answer, so after their 2xx this proves the pipeline has processed
        them: a test that shows something did NOT happen waits for this first."""
        await self.wait_rows("SELECT id, kind, attempts FROM outbox WHERE status = 'pending'",
                             [], timeout)

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT COUNT(*) FROM {table}")[0][0])

    async def customer_says(self, chat_id: int, text: str, **kw: Any) -> int:
        update = self.telegram.text_update(chat_id=chat_id, text=text, **kw)
        status, _ = await self.telegram.deliver(update, self.session)
        return status

    async def thread_at(self, address: str, timeout: float = 5.0) -> str:
        """The Slack thread of the conversation the newest message from `address` (an
        identity's address on any connector) went to, once it has one. An address may have
        several conversations (a closed one, one merged into another, another customer's
        conversation now answered there): the newest message says which one is current."""
        sql = ("SELECT c.slack_thread_ts FROM messages m"
               " JOIN identities i ON i.id = m.identity_id"
               " JOIN conversations c ON c.id = m.conversation_id"
               " WHERE i.address = ? AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1")

        async def read() -> Rows:
            return self.rows(sql, (address,))
        got = await poll(read, lambda rows: bool(rows) and rows[0][0] is not None,
                         f"a Slack thread for the newest message from {address}", timeout)
        return str(got[0][0])

    async def thread_of(self, chat_id: int, timeout: float = 5.0) -> str:
        """The Slack thread ts of the conversation with this Telegram chat."""
        return await self.thread_at(str(chat_id), timeout)

    async def agent_says(self, thread_ts: str, text: str, user: str = AGENT,
                         **kw: Any) -> int:
        event = self.agent.message_event(channel=CHANNEL, user=user, text=text,
                                         thread_ts=thread_ts, **kw)
        status, _ = await self.agent.post(event)
        return status


HarnessFactory = Callable[..., Coroutine[Any, Any, Harness]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandin]:
    async with SlackStandin() as standin:
        standin.add_user(AGENT, display_name=AGENT_NAME, real_name="Dana Whitfield")
        yield standin


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramStandin]:
    async with TelegramStandin(token=TG_TOKEN) as standin:
        yield standin


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """The store the harness runs on; set per test by `pytest_generate_tests`."""
    return str(request.param)


def with_storage(overrides: Mapping[str, Mapping[str, TomlValue]] | None,
                 storage: Mapping[str, TomlValue]) -> dict[str, dict[str, TomlValue]]:
    """`overrides` with `storage` under it: a test's own `[storage]` keys win."""
    tables = {table: dict(values) for table, values in (overrides or {}).items()}
    tables["storage"] = {**storage, **tables.get("storage", {})}
    return tables


@pytest.fixture
async def make_harness(
    tmp_path: Path, slack: SlackStandin, telegram: TelegramStandin,
    session: aiohttp.ClientSession, store_backend: str,
) -> AsyncIterator[HarnessFactory]:
    started: list[Bridge] = []
    readers: list[RowReader] = []

    async with AsyncExitStack() as schemas:
        async def make(overrides: Mapping[str, Mapping[str, TomlValue]] | None = None,
                       env: Mapping[str, str] | None = None,
                       clock: Callable[[], float] = time.time) -> Harness:
            """`overrides` adds config keys per table; `env` adds environment variables.
            Each bridge gets a store of its own: a new SQLite file, or a new random schema
            on the PostgreSQL `test` database (dropped after the test), unless the test
            names its own `[storage] url`."""
            sock = free_socket()
            port = sock.getsockname()[1]
            db = tmp_path / f"bridge-{len(started)}.db"
            storage: dict[str, TomlValue] = {}
            own_url = "url" in (overrides or {}).get("storage", {})
            if store_backend == "postgres" and not own_url:
                schema = await schemas.enter_async_context(fresh_schema())
                storage = {"url": PG_URL, "schema": schema}
            config = write_config(tmp_path / "bridge.toml", port=port, db=db, slack=slack,
                                  telegram=telegram, overrides=with_storage(overrides, storage))
            loaded = load_settings(config, settings_registry(),
                                   environ={**bridge_env(slack), **(env or {})},
                                   dotenv_dir=tmp_path)
            bridge = Bridge(loaded, sock=sock, clock=clock)
            await bridge.start()
            started.append(bridge)
            assert bridge.store is not None
            assert own_url or bridge.store.dialect.name == store_backend
            reader = reader_for(loaded.settings.storage)
            readers.append(reader)
            agent = SlackEventSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET,
                                     session, team_id=slack.team_id)
            return Harness(slack=slack, telegram=telegram, session=session, bridge=bridge,
                           port=port, agent=agent, reader=reader)

        try:
            yield make
        finally:
            for bridge in started:
                await bridge.stop()
            for reader in readers:
                reader.close()
        # Leaving `schemas` drops every schema, now that nothing uses them.


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    return await make_harness()


# -- no configured secret in any log record ---------------------------------------------------
# The secrets every test configuration uses.  A record that carries one is a leak, whatever
# formatter would print it later (the CLI's also redacts: see bridge/logs.py and test_logs.py).
TEST_SECRETS = ("test-signing-secret", "test-webhook-secret", "123456:STANDIN", "xoxb-standin",
                "standin-app-secret", "standin0auth0token0000000000000",
                "test-reply-token-secret-0123456789", "imap-test-password", "smtp-test-password",
                "page-a-token", "page-b-token", "standin-verify-token")


class SecretWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        found = [s for s in TEST_SECRETS if s in text]
        if found:
            self.leaks.append(f"{record.name} {record.levelname}: {text[:300]}")


@pytest.fixture(autouse=True)
def no_secret_in_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test: no log record (of any level that is emitted) carries a configured secret.
    A test that logs one on purpose (to check the redaction) says so with
    `@pytest.mark.logs_secrets`."""
    watch = SecretWatch()
    root = logging.getLogger()
    # Levels as `bridge run` sets them at INFO (bridge.logs.setup_logging): what it would emit.
    saved = {name: logging.getLogger(name).level for name in ("", *NOISY)}
    root.setLevel(logging.INFO)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    root.addHandler(watch)
    try:
        yield
    finally:
        root.removeHandler(watch)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
    if request.node.get_closest_marker("logs_secrets") is None:
        assert watch.leaks == [], "a secret reached a log record"
