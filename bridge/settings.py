"""Admin configuration: a TOML file, secrets as ``${ENV_NAME}``, validated by pydantic.

Every problem is reported with the file, the dotted key and the fix; unknown keys are errors.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bridge.canned import load_dir
from bridge.config_checks import PLACEHOLDERS, Problem, first_day_problems, placeholder_problems
from bridge.csat_settings import CsatSettings
from bridge.faq import FaqError, FaqSettings, faq_path, load_faq
from bridge.hours import Calendar, HoursSettings, hours_problems, team_calendar
from bridge.report import DashboardSettings, ReportsSettings
from bridge.teams import RoutingSettings, Team, TeamSettings, resolve_teams, team_problems
from storage.dialect import valid_schema_name

DEFAULT_CONFIG = "bridge.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(1_048_576, ge=1024)
    shutdown_timeout: float = Field(10.0, gt=0, le=60)
    metrics_token: str = ""  # GET /metrics: open when empty, else Authorization: Bearer <it>
    # Hostile clients (issue 16): a body not read within body_timeout gets 408; an idle
    # keep-alive connection is closed after keepalive_timeout; at most max_connections are
    # open, and at most max_connections_per_address from one address outside trusted_proxies
    # (whose X-Forwarded-For is the only one believed).
    body_timeout: float = Field(10.0, gt=0, le=300)
    keepalive_timeout: float = Field(60.0, gt=0, le=3600)
    max_connections: int = Field(1024, ge=1, le=100_000)
    max_connections_per_address: int = Field(64, ge=1, le=100_000)
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    # Test-only: honour BRIDGE_FAKE_NOW (bridge/clock.py), which moves business time.
    allow_fake_clock: bool = False

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an address or network (10.0.0.0/8)") from exc
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL such as https://support.example.com")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")


class StorageSettings(Strict):
    url: str = "sqlite:///bridge.db"
    # PostgreSQL only: the schema holding the bridge's tables (created if missing).  The
    # attribute has a trailing _ because BaseModel.schema exists; the config key is `schema`.
    schema_: str | None = Field(None, alias="schema")
    pool_size: int = Field(10, ge=1, le=200)  # PostgreSQL connections per bridge instance
    sqlite_synchronous: Literal["full", "normal"] = "full"
    batch_max: int = Field(512, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(
                "must be sqlite:///relative.db, sqlite:////absolute/path.db "
                "or postgresql://user@host:5432/db"
            )
        return value

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        url = info.data.get("url")
        if isinstance(url, str) and not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("storage.schema is for PostgreSQL only; remove it for SQLite")
        if not valid_schema_name(value):
            raise ValueError(
                "storage.schema must be a plain lower-case name (letters, digits, _; not "
                "starting with a digit or pg_), such as \"public\" or \"bridge\""
            )
        return value


class SlackSettings(Strict):
    bot_token: str
    signing_secret: str = ""  # required in HTTP mode (checked by `load_settings`)
    support_channel: str
    mode: Literal["http", "socket"] = "http"
    app_token: str = ""  # xapp-..., only for socket mode
    note_prefix: str = "note:"
    command_prefix: str = "!"
    api_base_url: str = "https://slack.com/api/"
    request_timeout: float = Field(10.0, gt=0, le=120)

    @field_validator("command_prefix")
    @classmethod
    def _command(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() for c in value.strip()):
            raise ValueError("must be a short prefix without spaces (the default is '!')")
        return value.strip()

    @field_validator("note_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty (the default is 'note:')")
        return value.strip()


class OutboxSettings(Strict):
    max_attempts: int = Field(8, ge=1, le=100)
    base_delay: float = Field(1.0, gt=0, le=600)
    max_delay: float = Field(300.0, gt=0, le=86_400)
    concurrency: int = Field(64, ge=1, le=1024)
    lease_seconds: float = Field(10.0, ge=1, le=600)  # several instances: a dead instance's
    # conversations (and polling loops) move to another one after this long


class ConversationSettings(Strict):
    reopen_within_hours: float = Field(168.0, ge=0, le=24 * 365)
    assign_on_first_reply: bool = False  # the first agent to reply takes an unassigned one
    notify_assignee: bool = False  # a customer's new message mentions the assignee
    timezone: str = "UTC"  # IANA name: `!snooze tomorrow 9:00` and times shown to agents

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as \"UTC\" or "
                             "\"Europe/Paris\"") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class ContinuitySettings(Strict):
    """One customer across channels: handoff codes and the context a returning customer's
    new thread starts with."""

    handoff_token_ttl_hours: float = Field(24.0, gt=0, le=24 * 30)
    history_conversations: int = Field(5, ge=0, le=20)  # earlier conversations shown


class MediaSettings(Strict):
    max_bytes: int = Field(26_214_400, ge=1024, le=2_147_483_647)
    link_ttl_hours: float = Field(72.0, gt=0, le=24 * 365)


class PrivacySettings(Strict):
    """Customers' data (issue 28): who may export it from Slack, and how long it is kept."""

    admins: list[str] = Field(default_factory=list)  # Slack user ids (U...) allowed to export
    keep_messages_days: float = Field(0.0, ge=0, le=36_500)  # 0: keep; else after closing
    keep_media_days: float = Field(0.0, ge=0, le=36_500)  # 0: until its link expires

    @field_validator("admins")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(r"[UW][A-Z0-9]{2,}", v)]
        if bad:
            raise ValueError(f"not Slack user ids: {bad} (fix: use ids such as U0123ABCD, "
                             "from a profile's 'Copy member ID')")
        return value


class LoggingSettings(Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"  # json: one object per line (time, level, ...)


class CannedSettings(Strict):
    """Canned replies (issue 22): the folder of team replies, one Markdown file each."""

    dir: str | None = None  # relative to the config file; None: only replies saved in Slack


class Settings(Strict):
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    slack: SlackSettings
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    conversations: ConversationSettings = Field(default_factory=ConversationSettings)
    continuity: ContinuitySettings = Field(default_factory=ContinuitySettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    canned: CannedSettings = Field(default_factory=CannedSettings)
    csat: CsatSettings = Field(default_factory=CsatSettings)  # surveys after a close
    # `[teams.<name>]`: each team's Slack channel; `support` (the default) is [slack]
    # support_channel unless its table names one.  `[[routing.rules]]`: which team a new
    # conversation goes to (see bridge/teams.py).
    teams: dict[str, TeamSettings] = Field(default_factory=dict)
    # `[hours.<name>]`: business-hours calendars a team picks with `hours = "<name>"`.
    hours: dict[str, HoursSettings] = Field(default_factory=dict)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    faq: FaqSettings = Field(default_factory=FaqSettings)  # issue 21: bridge/faq.py
    reports: ReportsSettings = Field(default_factory=ReportsSettings)  # issue 24
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)  # issue 24
    # validated per connector against the registry, see `load_settings`
    connectors: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def resolved_teams(self) -> dict[str, Team]:
        return resolve_teams(self.teams, self.slack.support_channel,
                             self.conversations.timezone)

    def calendar(self, team: str) -> Calendar:
        """The business hours of a team (always open without `hours`, or for no such team)."""
        table = self.teams.get(team)
        return team_calendar(self.hours, table.hours if table else None)


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class LoadedConfig:
    path: Path
    settings: Settings
    connectors: dict[str, BaseModel]  # only the enabled ones, validated
    warnings: list[Problem]
    # Every configured secret (values from ${VAR}, *token/*secret/*password keys, a database
    # URL's password): what no log line or error message may carry (see bridge/logs.py).
    secrets: frozenset[str] = frozenset()


def canned_dir(config: Path, settings: Settings) -> Path | None:
    """`[canned] dir`, relative to the config file."""
    if settings.canned.dir is None:
        return None
    return config.parent / settings.canned.dir


def canned_problems(file: str, config: Path, settings: Settings) -> list[Problem]:
    """Every reply file that cannot be used, named with how to fix it."""
    found = canned_dir(config, settings)
    if found is None:
        return []
    _, problems = load_dir(found, sorted(settings.resolved_teams()))
    return [Problem(file, "canned.dir", str(p), p.fix) for p in problems]


def resolve_config_path(cli_value: str | None) -> Path:
    return Path(cli_value or os.environ.get("BRIDGE_CONFIG") or DEFAULT_CONFIG)


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``NAME=value`` lines, ``#`` comments, optional quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        name, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:  # an unquoted value ends where a comment starts
            value = value.split(" #", 1)[0].rstrip()
        values[name.strip()] = value
    return values


def _substitute(
    node: Any, env: Mapping[str, str], key: str, file: str, problems: list[Problem],
    used: set[str] | None = None,
) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, env, f"{key}.{k}" if key else k, file, problems, used)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, f"{key}[{i}]", file, problems, used)
                for i, v in enumerate(node)]
    if isinstance(node, str):
        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if used is not None and env.get(name):
                used.add(env[name])
            if name not in env:
                problems.append(Problem(
                    file, key, f"environment variable {name} is not set",
                    f"export {name}=... or add {name}=... to .env in the working directory",
                ))
                return ""
            if not env[name].strip():
                problems.append(Problem(
                    file, key, f"environment variable {name} is empty",
                    f"give {name} its value (export {name}=... or {name}=... in .env in the "
                    "working directory)",
                ))
            return env[name]
        return _ENV_REF.sub(repl, node)
    return node


def _dotted(loc: tuple[int | str, ...], prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(item)
    return ".".join(parts)


def _fix_for(error_type: str, key: str, known: list[str], value: object = None) -> str:
    name = key.rsplit(".", 1)[-1]
    if error_type in ("int_type", "float_type") and isinstance(value, str | bool):
        return f"write a number without quotes, such as {name} = 8"
    if error_type == "bool_type":
        return f"write {name} = true or {name} = false, without quotes"
    if error_type == "extra_forbidden":
        hint = f" (known keys here: {', '.join(known)})" if known else ""
        return f"remove `{key.rsplit('.', 1)[-1]}` or correct its spelling{hint}"
    if error_type == "missing":
        if "." not in key:
            keys = f" with {', '.join(known)}" if known else ""
            return f"add a [{key}] table{keys} (see config/bridge.example.toml)"
        return f"add `{key.rsplit('.', 1)[-1]} = ...` to the [{key.rsplit('.', 1)[0]}] table"
    return "correct the value as described; config/bridge.example.toml documents every key"


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...],
                required_only: bool = False) -> list[str]:
    current: Any = model
    for item in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(item)
        if field is None:
            return []
        current = field.annotation
    fields = getattr(current, "model_fields", {})
    return sorted(f.alias or k for k, f in fields.items() if f.is_required() or not required_only)


def _validation_problems(
    exc: ValidationError, model: type[BaseModel], file: str, prefix: str = ""
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        key = _dotted(tuple(err["loc"]), prefix)
        loc = tuple(err["loc"])
        # For a missing table, list the keys of the table itself.
        missing = err["type"] == "missing"
        known = _known_keys(model, (*loc, "") if missing else loc, required_only=missing)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(Problem(file, key, message,
                                _fix_for(err["type"], key, known, err.get("input"))))
    return problems


def load_settings(
    path: Path,
    registry: Mapping[str, type[BaseModel]],
    environ: Mapping[str, str] | None = None,
    dotenv_dir: Path | None = None,
) -> LoadedConfig:
    """Read, substitute and validate a config file; raise `ConfigError` listing every problem.

    `registry` maps a connector name to its settings model (its ``[connectors.<name>]`` table).
    """
    file = str(path)
    if not path.is_file():
        raise ConfigError([Problem(
            file, "", "config file not found",
            "pass --config PATH, set BRIDGE_CONFIG, or copy config/bridge.example.toml "
            "to ./bridge.toml",
        )])
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(file, "", f"not valid TOML: {exc}",
                                   "fix the syntax at the position shown")]) from exc

    env: dict[str, str] = read_dotenv((dotenv_dir or Path.cwd()) / ".env")
    env.update(os.environ if environ is None else environ)
    disabled = {
        name for name, table in (raw.get("connectors") or {}).items()
        if isinstance(table, dict) and table.get("enabled") is False
    }
    # Every problem is collected first; a disabled connector's become one warning at the end.
    found: list[Problem] = []
    warnings: list[Problem] = []
    substituted: set[str] = set()
    data = _substitute(raw, env, "", file, found, substituted)
    reported = {p.key for p in found}  # an unset or empty variable: one message for its key

    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        found.extend(p for p in _validation_problems(exc, Settings, file)
                     if p.key not in reported)

    connectors: dict[str, BaseModel] = {}
    raw_connectors = data.get("connectors") if isinstance(data, dict) else None
    if isinstance(raw_connectors, dict):
        for name, table in raw_connectors.items():
            key = f"connectors.{name}"
            model = registry.get(name)
            if model is None:
                found.append(Problem(
                    file, key, "unknown connector",
                    f"use one of: {', '.join(sorted(registry)) or '(none available)'}",
                ))
                continue
            if not isinstance(table, dict):
                found.append(Problem(file, key, "must be a table",
                                     f"write it as [{key}] with its keys below"))
                continue
            try:
                validated = model.model_validate(table)
            except ValidationError as exc:
                found.extend(p for p in _validation_problems(exc, model, file, key)
                             if p.key not in reported)
                continue
            if getattr(validated, "enabled", True):
                connectors[name] = validated

    placeholders = [p for p in placeholder_problems(file, data, skip=disabled)
                    if p.key not in reported]
    found.extend(placeholders)
    reported |= {p.key for p in placeholders}
    if settings is not None:
        errors, advice = first_day_problems(file, settings, connectors)
        errors += [Problem(file, key, message, fix) for key, message, fix in team_problems(
            settings.teams, settings.routing.rules, sorted(registry),
            settings.slack.support_channel, PLACEHOLDERS)]
        errors += [Problem(file, key, message, fix) for key, message, fix in hours_problems(
            settings.hours, {name: t.hours for name, t in settings.teams.items()})]
        if settings.faq.file:
            try:
                load_faq(faq_path(path, settings.faq.file))
            except FaqError as exc:
                errors.append(Problem(file, "faq.file", str(exc), exc.fix))
        errors += canned_problems(file, path, settings)
        found.extend(p for p in errors if p.key not in reported)
        warnings.extend(p for p in advice if p.key not in reported)
        if not connectors and not any(_connector_of(p.key) for p in found):
            warnings.append(Problem(file, "connectors", "no customer connector is enabled",
                                    "add [connectors.telegram] with enabled = true", "warning"))
    problems = [p for p in found if _connector_of(p.key) not in disabled]
    for name in sorted(disabled):
        first: dict[str, str] = {}
        for p in found:
            if _connector_of(p.key) == name:
                first.setdefault(p.key.removeprefix(f"connectors.{name}."), p.message)
        if first:
            listed = "; ".join(f"{k}: {m}" for k, m in sorted(first.items()))
            warnings.append(Problem(
                file, f"connectors.{name}",
                f"is disabled (enabled = false); before enabling it, fix {listed}",
                "run check-config again after setting enabled = true to see each fix",
                "warning"))
    if problems or settings is None:
        raise ConfigError(problems + warnings)
    return LoadedConfig(path=path, settings=settings, connectors=connectors, warnings=warnings,
                        secrets=secret_values(data, substituted))


_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_key)$", re.IGNORECASE)
_MIN_SECRET = 6  # shorter values would blank out common words in every log line


def secret_values(data: Any, substituted: set[str]) -> frozenset[str]:
    """The values no log line may carry: every `${VAR}` value, every value of a key named like
    a secret, the password of a URL (`postgresql://user:PASSWORD@host/db`)."""
    found = set(substituted)
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        key, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((key, v) for v in node)
        elif isinstance(node, str):
            if _SECRET_KEY.search(key):
                found.add(node)
            if "://" in node:
                try:
                    password = urlsplit(node).password
                except ValueError:
                    password = None
                if password:
                    found.add(password)
    return frozenset(v for v in found if len(v) >= _MIN_SECRET)


def _connector_of(key: str) -> str | None:
    parts = key.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "connectors" else None
