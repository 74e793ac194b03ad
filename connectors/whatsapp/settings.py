"""The [connectors.whatsapp] table, with one [[connectors.whatsapp.phone_numbers]] entry per
business phone number on Meta's WhatsApp Cloud API."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _digits(value: Any) -> Any:
    """An id written as a TOML integer (`phone_number_id = 1234567890`) is the same id."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class PhoneNumber(BaseModel):
    """A business phone number the bridge answers for."""

    model_config = ConfigDict(extra="forbid", strict=True)

    phone_number_id: str
    number: str  # E.164, as customers dial it: wa.me links

    _id_digits = field_validator("phone_number_id", mode="before")(_digits)

    @field_validator("phone_number_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(r"\d{1,30}", value):
            raise ValueError("must be the numeric Phone number ID (WhatsApp Manager > "
                             "API Setup), not the phone number itself")
        return value

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        value = re.sub(r"[\s().-]", "", value)
        if not re.fullmatch(r"\+[1-9]\d{6,14}", value):
            raise ValueError("must be the number in E.164 form, like +15551234567")
        return value

    @property
    def wa_me(self) -> str:
        return f"https://wa.me/{self.number.removeprefix('+')}"


class WhatsAppSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = True
    app_secret: str = Field(min_length=1)
    verify_token: str = Field(min_length=1)
    access_token: str = Field(min_length=1)  # a System User's permanent token
    business_account_id: str
    graph_api_version: str = "v25.0"
    graph_base_url: str = "https://graph.facebook.com"
    request_timeout: float = Field(10.0, gt=0, le=120)
    throttle_retry_after: float = Field(5.0, gt=0, le=3600)  # after 130429 and 131056
    template_cache_seconds: float = Field(600.0, ge=0, le=86400)
    read_receipts: bool = True  # mark the customer's messages read once in Slack's thread
    phone_numbers: list[PhoneNumber] = Field(min_length=1)

    _waba_digits = field_validator("business_account_id", mode="before")(_digits)

    @field_validator("business_account_id")
    @classmethod
    def _waba(cls, value: str) -> str:
        if not re.fullmatch(r"\d{1,30}", value):
            raise ValueError("must be the numeric WhatsApp Business Account ID "
                             "(WhatsApp Manager > Account tools)")
        return value

    @field_validator("graph_api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.fullmatch(r"v\d+\.\d+", value):
            raise ValueError("must look like v25.0")
        return value

    @field_validator("graph_base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL, like https://graph.facebook.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _unique_numbers(self) -> WhatsAppSettings:
        ids = [n.phone_number_id for n in self.phone_numbers]
        if len(ids) != len(set(ids)):
            raise ValueError("each phone_number_id may appear once in "
                             "[[connectors.whatsapp.phone_numbers]]")
        return self

    def number(self, phone_number_id: str) -> PhoneNumber | None:
        return next((n for n in self.phone_numbers if n.phone_number_id == phone_number_id),
                    None)
