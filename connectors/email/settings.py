"""The [connectors.email] table."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = True
    address: str  # the support mailbox: customers write here, replies come from here
    display_name: str = ""
    # Inbound: IMAP ("ssl" is implicit TLS, usually port 993; "starttls" upgrades on 143)
    imap_host: str
    imap_port: int = Field(993, ge=1, le=65535)
    imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    imap_user: str
    imap_password: str = Field(min_length=1)
    mailbox: str = "INBOX"
    poll_interval: float = Field(30.0, gt=0, le=3600)  # seconds, when the server has no IDLE
    idle: bool = True  # use IDLE when the server offers it (false: always poll)
    idle_renew: float = Field(600.0, gt=0, le=1740)  # re-issue IDLE well under 29 minutes
    imap_timeout: float = Field(30.0, gt=0, le=300)  # one IMAP command (not IDLE)
    processed: Literal["none", "seen", "move"] = "none"  # after a mail is stored
    processed_mailbox: str = "Processed"  # where "move" puts it
    import_existing: bool = False  # first start: import the mail already there, or only new
    # Outbound: SMTP ("ssl" = implicit TLS on 465, "starttls" = upgrade on 587)
    smtp_host: str
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["ssl", "starttls", "none"] = "starttls"
    smtp_user: str = ""  # no AUTH when empty
    smtp_password: str = ""
    smtp_timeout: float = Field(30.0, gt=0, le=300)
    reply_token_secret: str = Field(min_length=16)
    ca_file: str = ""  # PEM CA certificates trusted for IMAP/SMTP TLS, instead of the system's
    # Content
    max_message_bytes: int = Field(26_214_400, ge=1024)  # larger mails: headers only
    attach_original: Literal["always", "when_trimmed", "never"] = "when_trimmed"
    # Raw mails kept for their files and `.eml` (copied into Slack soon after arrival) are
    # deleted from the store after this many days.
    keep_originals_days: float = Field(30.0, gt=0, le=3650)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        _, addr = parseaddr(value)
        local, _, domain = addr.rpartition("@")
        if addr != value.strip() or not local or not domain:
            raise ValueError("must be a bare address such as support@example.com")
        try:
            Address(addr_spec=addr)
        except Exception as exc:  # ValueError, or email.errors.HeaderParseError
            raise ValueError(f"is not a valid address: {exc}") from None
        return addr

    @model_validator(mode="after")
    def _smtp_login(self) -> EmailSettings:
        if self.smtp_user and not self.smtp_password:
            raise ValueError("smtp_password is required when smtp_user is set (leave both empty "
                             "for a server without AUTH)")
        return self

    @property
    def local_part(self) -> str:
        return self.address.rsplit("@", 1)[0]

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]
