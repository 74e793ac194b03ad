"""The [connectors.messenger] table, with one [[connectors.messenger.pages]] entry per Page."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.meta.settings import digits, numeric_id, valid_graph_base_url, valid_graph_version


class Page(BaseModel):
    """A Facebook Page the bridge answers for, with its own Page access token."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str
    access_token: str = Field(min_length=1)
    human_agent_tag: bool | None = None  # None: the connector-wide `human_agent_tag`
    username: str = ""  # the Page's @username: m.me/<username> links (default: m.me/<id>)

    _id_digits = field_validator("id", mode="before")(digits)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return numeric_id(value, "must be the numeric Page ID (Page > About > Page "
                                 "transparency)")

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        value = value.removeprefix("@")
        if value and not re.fullmatch(r"[A-Za-z0-9.]{5,50}", value):
            raise ValueError("must be the Page's username as in facebook.com/<username>: at "
                             "least 5 letters, digits or periods (or leave it out)")
        return value

    @property
    def m_me(self) -> str:
        """The Page's m.me link."""
        return f"https://m.me/{self.username or self.id}"


class MessengerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = True
    app_secret: str = Field(min_length=1)
    verify_token: str = Field(min_length=1)
    app_id: str = ""  # our Meta app's id: echoes of our own sends carry it
    graph_api_version: str = "v25.0"
    graph_base_url: str = "https://graph.facebook.com"
    human_agent_tag: bool = False  # needs Meta's Human Agent permission (App Review)
    personas: bool = False
    persona_picture_url: str = ""  # the picture of every persona the bridge creates
    request_timeout: float = Field(10.0, gt=0, le=120)
    profile_timeout: float = Field(2.0, gt=0, le=30)  # name lookups while a webhook waits
    throttle_retry_after: float = Field(60.0, gt=0, le=3600)  # after Meta's codes 4 and 613
    pages: list[Page] = Field(min_length=1)

    _version = field_validator("graph_api_version")(valid_graph_version)
    _base = field_validator("graph_base_url")(valid_graph_base_url)
    _app_id_digits = field_validator("app_id", mode="before")(digits)

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        if value and not re.fullmatch(r"\d{1,30}", value):
            raise ValueError("must be the numeric App ID (App settings > Basic)")
        return value

    @model_validator(mode="after")
    def _unique_pages(self) -> MessengerSettings:
        ids = [page.id for page in self.pages]
        if len(ids) != len(set(ids)):
            raise ValueError("each page id may appear once in [[connectors.messenger.pages]]")
        return self

    def page(self, page_id: str) -> Page | None:
        return next((p for p in self.pages if p.id == page_id), None)

    def tag_allowed(self, page: Page) -> bool:
        return self.human_agent_tag if page.human_agent_tag is None else page.human_agent_tag
