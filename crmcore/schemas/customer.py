from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crmcore.enums import CustomerKind, LifecycleStage
from crmcore.limits import MAX_ID, MAX_SEARCH
from crmcore.schemas.fields import CountryCode, Email, Line, Phone, Ref, ShortText, Tags, Text, Word, normalise_phone

if TYPE_CHECKING:
    from crmcore.models import Customer

#: the largest page a customer search returns (the HTTP API caps it lower: ``[api] max_page_size``)
MAX_PAGE = 100_000

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class _PhoneByCountry(BaseModel):
    """Phones are normalised to E.164, using the record's country for national numbers."""

    @model_validator(mode="after")
    def _phone(self) -> Any:
        phone = getattr(self, "phone", None)
        if phone:
            object.__setattr__(self, "phone", normalise_phone(phone, getattr(self, "country", None)))
        return self


class CustomerCreate(_PhoneByCountry):
    model_config = _STRICT

    name: Text
    kind: CustomerKind = CustomerKind.ORGANIZATION
    email: Email | None = None
    phone: Phone | None = None
    country: CountryCode | None = None
    region: ShortText | None = None
    industry: ShortText | None = None
    lifecycle_stage: LifecycleStage = LifecycleStage.PROSPECT
    owner: Line | None = Field(default=None, max_length=64, description="username of the owning user")
    tags: Tags = Field(default_factory=list)
    external_ref: Ref | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class CustomerUpdate(_PhoneByCountry):
    """Only the fields given are changed. ``version`` (optional) must match the stored one."""

    model_config = _STRICT

    name: Text | None = None
    kind: CustomerKind | None = None
    email: Email | None = None
    phone: Phone | None = None
    country: CountryCode | None = None
    region: ShortText | None = None
    industry: ShortText | None = None
    lifecycle_stage: LifecycleStage | None = None
    owner: Line | None = Field(default=None, max_length=64)
    tags: Tags | None = None
    external_ref: Ref | None = None
    attributes: dict[str, Any] | None = None
    version: int | None = None


class CustomerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, defer_build=True)

    id: int
    kind: CustomerKind
    name: str
    email: str | None
    phone: str | None
    country: str | None
    region: str | None
    industry: str | None
    lifecycle_stage: LifecycleStage
    owner_id: int | None
    tags: list[str]
    external_ref: str | None
    attributes: dict[str, Any]
    archived: bool
    merged_into_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int


class ContactCreate(_PhoneByCountry):
    model_config = _STRICT

    name: Text
    role: Word | None = None  # a word of [vocabularies] contact_roles (checked by the service)
    title: ShortText | None = None
    email: Email | None = None
    phone: Phone | None = None
    external_ref: Ref | None = None


class ContactUpdate(_PhoneByCountry):
    model_config = _STRICT

    name: Text | None = None
    role: Word | None = None  # a word of [vocabularies] contact_roles (checked by the service)
    title: ShortText | None = None
    email: Email | None = None
    phone: Phone | None = None


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, defer_build=True)

    id: int
    customer_id: int
    name: str
    role: str | None
    title: str | None
    email: str | None
    phone: str | None
    external_ref: str | None


class CustomerQuery(BaseModel):
    """A customer search, the same for every face (CLI, HTTP API, console, Python).

    Pages are keyset pages by id: pass the previous page's ``next_after`` as ``after``.
    """

    model_config = _STRICT

    search: Line | None = Field(None, min_length=1, max_length=MAX_SEARCH,
                                description="part of the name, email or external reference (case-insensitive)")
    tag: Line | None = Field(None, min_length=1, max_length=64, description="customers carrying this tag")
    owner: Line | None = Field(None, min_length=1, max_length=64, description="username of the owning user")
    country: CountryCode | None = None
    stage: LifecycleStage | None = Field(None, description="lifecycle stage")
    archived: bool = Field(False, description="include archived customers")
    after: int = Field(0, ge=0, le=MAX_ID, description="the last id of the previous page")
    limit: int = Field(50, ge=1, le=MAX_PAGE)

    @model_validator(mode="after")
    def _fold_tag(self) -> Any:
        if self.tag is not None:
            object.__setattr__(self, "tag", self.tag.lower())  # tags are stored lower-cased
        return self


@dataclass(frozen=True)
class CustomerPage:
    """One page of a search: the customers (ORM rows) and the ``after`` of the next page (None: last)."""

    items: list[Customer] = field(default_factory=list)
    next_after: int | None = None
