"""The [connectors.twilio] table."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Template(BaseModel):
    """An approved WhatsApp template (Twilio Content API), offered outside the 24-hour window."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1)
    content_sid: str
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("content_sid")
    @classmethod
    def _sid(cls, value: str) -> str:
        # Real SIDs are HX + 32 hex digits; only the prefix is required, so a placeholder in
        # a config being drafted passes check-config (Twilio refuses a wrong SID at the send).
        if not re.fullmatch(r"HX\S+", value):
            raise ValueError("must be a Content SID from the Content Template Builder: HX...")
        return value


class TwilioSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = True
    account_sid: str
    auth_token: str = Field(min_length=1)
    sms_from: str = ""  # +E.164 sender for SMS
    whatsapp_from: str = ""  # whatsapp:+E.164 sender
    messaging_service_sid: str = ""  # MG..., instead of sms_from
    # The numbers customers write to, named in handoff invites; needed only when the sender is
    # a messaging service (default: sms_from, whatsapp_from).  whatsapp_number also declares
    # that the messaging service serves WhatsApp.
    sms_number: str = ""
    whatsapp_number: str = ""
    webhook_signing_key: str = ""  # the shared key of Twilio's SHA-256 webhook signatures
    api_base_url: str = "https://api.twilio.com"
    request_timeout: float = Field(10.0, gt=0, le=120)
    templates: list[Template] = Field(default_factory=list)

    @field_validator("account_sid")
    @classmethod
    def _account(cls, value: str) -> str:
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", value):
            raise ValueError("must be the Account SID from the Twilio console: AC followed by "
                             "32 hex digits")
        return value

    @field_validator("sms_from", "sms_number", "whatsapp_number")
    @classmethod
    def _sms(cls, value: str) -> str:
        if value and not re.fullmatch(r"\+[1-9]\d{6,14}", value):
            raise ValueError("must be an E.164 number such as +15550001111")
        return value

    @field_validator("whatsapp_from")
    @classmethod
    def _whatsapp(cls, value: str) -> str:
        if value and not re.fullmatch(r"whatsapp:\+[1-9]\d{6,14}", value):
            raise ValueError("must look like whatsapp:+14155238886")
        return value

    @field_validator("messaging_service_sid")
    @classmethod
    def _service(cls, value: str) -> str:
        if value and not re.fullmatch(r"MG[0-9a-fA-F]{32}", value):
            raise ValueError("must be a Messaging Service SID: MG followed by 32 hex digits")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _a_sender(self) -> TwilioSettings:
        if not (self.sms_from or self.whatsapp_from or self.messaging_service_sid):
            raise ValueError("set at least one sender: sms_from, whatsapp_from or "
                             "messaging_service_sid")
        for number, sender in (("sms_number", self.sms_from), ("whatsapp_number",
                                                               self.whatsapp_from)):
            if getattr(self, number) and not (sender or self.messaging_service_sid):
                raise ValueError(f"{number} names the number of a sender: set it with "
                                 "messaging_service_sid")
        return self

    @property
    def handoff_numbers(self) -> dict[str, str]:
        """The channels a customer can be handed to, and the +E.164 number each one uses."""
        whatsapp_from = self.whatsapp_from.removeprefix("whatsapp:")
        numbers = {"sms": self.sms_number or self.sms_from,
                   "whatsapp": self.whatsapp_number or whatsapp_from}
        return {channel: number for channel, number in numbers.items() if number}

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels configured: SMS with an SMS sender or a messaging service (its SMS
        numbers), WhatsApp with a WhatsApp sender or a declared whatsapp_number."""
        found: list[str] = []
        if self.sms_from or self.messaging_service_sid:
            found.append("sms")
        if self.whatsapp_from or self.whatsapp_number:
            found.append("whatsapp")
        return tuple(found)
