"""The settings rules Meta's two connectors share: ids written as TOML integers, numeric ids,
the Graph API version and base URL.  Each is a plain function; a connector's Settings binds it
with `field_validator`."""

from __future__ import annotations

import re
from typing import Any


def digits(value: Any) -> Any:
    """An id written as a TOML integer (`id = 1234567890`) is the same id."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def numeric_id(value: str, fix: str) -> str:
    """Meta's ids are digits; `fix` says where to find the right one."""
    if not re.fullmatch(r"\d{1,30}", value):
        raise ValueError(fix)
    return value


def valid_graph_version(value: str) -> str:
    if not re.fullmatch(r"v\d+\.\d+", value):
        raise ValueError("must look like v25.0")
    return value


def valid_graph_base_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL, like https://graph.facebook.com")
    return value.rstrip("/")
