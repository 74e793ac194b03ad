"""The [connectors.telegram] table."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class TelegramSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = True
    bot_token: str
    mode: Literal["webhook", "polling"] = "webhook"
    webhook_secret: str = Field("", validate_default=True)  # required in webhook mode
    poll_timeout: int = Field(25, ge=0, le=50)  # getUpdates long-poll seconds (polling mode)
    api_base_url: str = "https://api.telegram.org/bot"
    file_base_url: str = "https://api.telegram.org/file/bot"
    request_timeout: float = Field(10.0, gt=0, le=120)
    connection_pool_size: int = Field(64, ge=1, le=1024)
    register_webhook: bool = True
    max_upload_bytes: int = Field(52_428_800, ge=1024)  # 50 MB on api.telegram.org; a local
                                                        # Bot API server allows 2000 MB

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: str) -> str:
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", value):
            raise ValueError("must look like 123456789:AA... (the token BotFather gave you)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str, info: ValidationInfo) -> str:
        if not value and info.data.get("mode", "webhook") == "webhook":
            raise ValueError("is required in webhook mode: 1-256 characters of A-Z, a-z, 0-9, "
                             "_ and - (or set mode = \"polling\")")
        if value and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and - (webhook mode "
                             "refuses every request without it)")
        return value
