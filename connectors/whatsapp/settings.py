"""The [connectors.whatsapp] table, with one [[connectors.whatsapp.phone_numbers]] entry per
business phone number on Meta's WhatsApp Cloud API."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.meta.settings import digits, numeric_id, valid_graph_base_url, valid_graph_version


class PhoneNumber(BaseModel):
    """A business phone number the bridge answers for."""

    model_config = ConfigDict(extra="forbid", strict=True)

    phone_number_id: str
    number: str  # E.164, as customers dial it: wa.me links

    _id_digits = field_validator("phone_number_id", mode="before")(digits)

    @field_validator("phone_number_id")
    @classmethod
    def _id(cls, value: str) -> str:
        return numeric_id(value, "must be the numeric Phone number ID (WhatsApp Manager > "
                                 "API Setup), not the phone number itself")

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

    _waba_digits = field_validator("business_account_id", mode="before")(digits)
    _version = field_validator("graph_api_version")(valid_graph_version)
    _base = field_validator("graph_base_url")(valid_graph_base_url)

    @field_validator("business_account_id")
    @classmethod
    def _waba(cls, value: str) -> str:
        return numeric_id(value, "must be the numeric WhatsApp Business Account ID "
                                 "(WhatsApp Manager > Account tools)")

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
