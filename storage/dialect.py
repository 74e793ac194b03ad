"""Every SQL difference between SQLite and PostgreSQL lives here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Dialect:
    name: str
    tokens: dict[str, str]

    def expand(self, sql: str) -> str:
        for token, value in self.tokens.items():
            sql = sql.replace("{{" + token + "}}", value)
        return sql


SQLITE = Dialect("sqlite", {"autoid": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL",
                            "blob": "BLOB"})
POSTGRES = Dialect("postgres", {"autoid": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION",
                                "blob": "BYTEA"})


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The numbered migrations shipped in `storage/migrations/`, in order."""
    found: list[Migration] = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise RuntimeError(f"migration numbering has a gap before {migration.name}")
    return found


def split_statements(sql: str) -> list[str]:
    """Split a migration script on `;` at line ends (our migrations keep it that simple)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [stmt.strip() for stmt in body.split(";\n") if stmt.strip().strip(";")]
