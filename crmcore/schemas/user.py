from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from crmcore.enums import Role
from crmcore.schemas.fields import Email, Text


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(pattern=r"^[a-z][a-z0-9_.-]{1,63}$")
    display_name: Text
    email: Email | None = None
    # a core role or one a loaded plugin declares (checked by the user service against the CRM's roles)
    roles: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,39}$")]] = Field(
        default_factory=lambda: [Role.VIEWER.value])

    @field_validator("roles")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(str(r) for r in v))


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    email: str | None
    roles: list[str]
    active: bool
