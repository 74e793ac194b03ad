"""The [connectors.webchat] table, with one [[connectors.webchat.sites]] entry per web site."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COLOR = re.compile(r"#[0-9a-fA-F]{6}")
TEXT_KEYS = ("open", "close", "send", "send_button", "message", "placeholder", "sending", "sent",
             "connecting", "messages", "unverified", "limited", "dismiss", "attach",
             "upload_failed", "offline", "offline_until", "email_prompt", "email_label")


def luminance(color: str) -> float:
    """WCAG 2 relative luminance of #rrggbb."""
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
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

    @model_validator(mode="after")
    def _contrast(self) -> Colors:
        ratio = contrast(self.primary, self.on_primary)
        if ratio < 4.5:
            raise ValueError(f"primary {self.primary} and on_primary {self.on_primary} have a "
                             f"contrast of {ratio:.1f}:1; WCAG AA needs 4.5:1 (darken primary "
                             "or use white or black text)")
        return self


class Invitation(BaseModel):
    """A greeting shown once per visitor per day on pages whose path matches."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url_pattern: str = Field(min_length=1, max_length=200)  # a glob on the path: "/pricing*"
    after_seconds: float = Field(default=10.0, ge=0, le=3600)
    text: str = Field(min_length=1, max_length=200)


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
    texts: dict[str, dict[str, str]] = Field(default_factory=dict)  # per language, per key
    team: str = "support"  # whose business hours decide when the window says it is offline
    invitations: list[Invitation] = Field(default_factory=list)

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

    @field_validator("texts")
    @classmethod
    def _texts(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for lang, table in value.items():
            if lang not in LANGUAGES:
                raise ValueError(f"{lang!r} is not one of {', '.join(LANGUAGES)}")
            for key in table:
                if key not in TEXT_KEYS:
                    raise ValueError(f"{lang}.{key} is not a widget text; the texts are "
                                     f"{', '.join(TEXT_KEYS)}")
        return value

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
    poll_hold_seconds: float = Field(default=25.0, ge=0, le=60)  # the long-poll fallback
    history_size: int = Field(default=200, ge=10, le=2000)  # messages kept for resume
    # Where agents' pictures may be fetched from (served to pages by the bridge itself).
    avatar_hosts: list[str] = Field(
        default_factory=lambda: [".slack-edge.com", "secure.gravatar.com"])
    avatar_origins: list[str] = Field(default_factory=list)  # a stand-in's; only tests set it
    max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    file_types: list[str] = Field(default_factory=lambda: [
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"])

    @model_validator(mode="after")
    def _unique(self) -> WebchatSettings:
        ids = [site.id for site in self.sites]
        if len(ids) != len(set(ids)):
            raise ValueError("two [[connectors.webchat.sites]] have the same id")
        return self

    def site(self, site_id: str) -> Site | None:
        return next((site for site in self.sites if site.id == site_id), None)
