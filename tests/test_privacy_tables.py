"""Every table of the store is classified as personal or not in `storage/privacy_tables.py`,
so an erasure cannot forget a table someone adds later."""

from __future__ import annotations

import re

from storage.copy import NOT_COPIED, TABLES
from storage.dialect import migrations
from storage.privacy_tables import NOT_PERSONAL, PERSONAL, classified

_CREATE = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?([a-z_][a-z0-9_]*)", re.IGNORECASE)

FIX = ("classify it in storage/privacy_tables.py: add it to PERSONAL (and erase it in "
       "storage/privacy.py: `erase_customer`, plus retention if it holds message text or "
       "files) or to NOT_PERSONAL, each with a one-line reason")


def migration_tables() -> set[str]:
    return {name.lower() for m in migrations() for name in _CREATE.findall(m.sql)}


def test_every_table_is_classified() -> None:
    tables = migration_tables() | {table for table, _ in TABLES} | NOT_COPIED
    missing = sorted(tables - classified())
    assert not missing, f"tables not classified for privacy: {missing}; {FIX}"


def test_no_table_is_classified_twice_or_unknown() -> None:
    both = sorted(set(PERSONAL) & set(NOT_PERSONAL))
    assert not both, f"classified both personal and not: {both}; keep each in one dict"
    unknown = sorted(classified() - migration_tables())
    assert not unknown, (f"classified but no migration creates them: {unknown}; remove them"
                         " from storage/privacy_tables.py")
    assert all(reason.strip() for reason in [*PERSONAL.values(), *NOT_PERSONAL.values()])
