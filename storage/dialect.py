"""Every SQL difference between SQLite and PostgreSQL lives here.

SQL is written once, with `?` placeholders and `{{token}}` dialect tokens, in the migrations
and in the transactions (`storage/transactions.py`); `Dialect.prepare` turns it into what the
backend runs: tokens expanded and, for PostgreSQL, `?` rewritten to `$1..$n`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Dialect:
    name: str
    tokens: dict[str, str]
    numbered_params: bool  # `$1, $2...` instead of `?`
    table_exists: str  # one row when the table named by the parameter exists
    columns: str  # the names (`column_name`) of the table's columns, in order
    migration_lock: str | None  # taken first in the migration transaction (SQLite: BEGIN
    # IMMEDIATE already serialises writers)
    reset_sequence: str | None  # after explicit ids were inserted into `{table}`
    _prepared: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def expand(self, sql: str) -> str:
        for token, value in self.tokens.items():
            sql = sql.replace("{{" + token + "}}", value)
        return sql

    def prepare(self, sql: str) -> str:
        """The statement as this backend runs it (cached: the transactions' SQL is constant)."""
        done = self._prepared.get(sql)
        if done is None:
            done = self.expand(sql) if "{{" in sql else sql
            if self.numbered_params:
                done = numbered_placeholders(done)
            if len(self._prepared) < 4096:  # statements built from data (copy-store) vary
                self._prepared[sql] = done
        return done


def numbered_placeholders(sql: str) -> str:
    """`?` outside string literals becomes `$1`, `$2`... in order."""
    out: list[str] = []
    count = 0
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "?" and not quoted:
            count += 1
            out.append(f"${count}")
        else:
            out.append(ch)
    return "".join(out)


SQLITE = Dialect(
    "sqlite",
    {"autoid": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL", "blob": "BLOB",
     "for_update": ""},
    numbered_params=False,
    table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    columns="SELECT name AS column_name FROM pragma_table_info(?) ORDER BY cid",
    migration_lock=None,
    reset_sequence=None,  # AUTOINCREMENT follows explicit ids by itself (sqlite_sequence)
)
POSTGRES = Dialect(
    "postgres",
    {"autoid": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION", "blob": "BYTEA",
     "for_update": "FOR UPDATE"},
    numbered_params=True,
    table_exists="SELECT 1 WHERE to_regclass(?) IS NOT NULL",
    columns="SELECT column_name FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = ? ORDER BY ordinal_position",
    # One constant key for every bridge: instances starting together migrate one at a time.
    migration_lock="SELECT pg_advisory_xact_lock(7266524412013)",
    reset_sequence="SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                   " COALESCE(MAX(id), 0) + 1, false) FROM {table}",
)


def valid_schema_name(name: str) -> bool:
    """A PostgreSQL schema name we accept: lower case, unquoted-identifier safe, not pg_*."""
    return bool(_SCHEMA_NAME.match(name)) and not name.startswith("pg_")


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
