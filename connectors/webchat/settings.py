"""The [connectors.webchat] table, with one [[connectors.webchat.sites]] entry per web site."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COLOR = re.compile(r"#[0-9a-fA-F]{6}")
LANGUAGES = ("en", "sr-Latn", "sr-Cyrl", "hr", "sl")


class Colors(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    primary: str = "#1f5fbf"  # the button, the window's header, the visitor's bubbles
    on_primary: str = "#ffffff"  # text on `primary`

    @field_validator("primary", "on_primary")
    @classmethod
    def _color(cls, value: str) -> str:
        if not COLOR.fullmatch(value):
            raise ValueError("must be a colour as #rrggbb, for example \"#1f5fbf\"")
        return value.lower()


class Site(BaseModel):
    """A web site that carries the widget: `<script src=".../widget.js" data-site="<id>">`."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    allowed_origins: list[str] = Field(min_length=1)
    title: str = Field(default="Chat with us", min_length=1, max_length=60)
    colors: Colors = Field(default_factory=Colors)
    languages: list[str] = Field(default_factory=lambda: ["en"])
    identity_secret: str = ""  # HMAC-SHA256 key for `user_hash` (BridgeChat.identify)
    require_verification: bool = False  # only verified users may chat

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", value):
            raise ValueError("must be 1-40 lowercase letters, digits or hyphens (it goes in "
                             "data-site=\"...\")")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or \
                    parts.path not in ("", "/") or parts.query or parts.fragment:
                raise ValueError(f"{origin!r} is not an origin: write scheme://host[:port], "
                                 "for example \"https://www.example.com\"")
            out.append(f"{parts.scheme}://{parts.netloc.lower()}")
        return out

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for lang in value:
            if lang not in LANGUAGES:
                raise ValueError(f"{lang!r} is not one of {', '.join(LANGUAGES)}")
        return value or ["en"]

    @model_validator(mode="after")
    def _verification(self) -> Site:
        if self.require_verification and not self.identity_secret:
            raise ValueError("require_verification = true needs identity_secret (the key your "
                             "site signs user ids with)")
        return self


class WebchatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = True
    sites: list[Site] = Field(min_length=1)
    max_text_chars: int = Field(default=4000, ge=1, le=20000)
    messages_per_minute: int = Field(default=20, ge=1)  # per visitor
    messages_per_minute_per_address: int = Field(default=60, ge=1)  # per client address
    connections_per_minute: int = Field(default=30, ge=1)  # per client address
    heartbeat_seconds: float = Field(default=25.0, gt=0, le=300)
    history_size: int = Field(default=200, ge=10, le=2000)  # messages kept for resume
    # Where agents' pictures may be fetched from (served to pages by the bridge itself).
    avatar_hosts: list[str] = Field(
        default_factory=lambda: [".slack-edge.com", "secure.gravatar.com"])
    avatar_origins: list[str] = Field(default_factory=list)  # a stand-in's; only tests set it

    @model_validator(mode="after")
    def _unique(self) -> WebchatSettings:
        ids = [site.id for site in self.sites]
        if len(ids) != len(set(ids)):
            raise ValueError("two [[connectors.webchat.sites]] have the same id")
        return self

    def site(self, site_id: str) -> Site | None:
        return next((site for site in self.sites if site.id == site_id), None)
