from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crmcore.enums import Role
from crmcore.schemas.fields import Email, Text


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(pattern=r"^[a-z][a-z0-9_.-]{1,63}$")
    display_name: Text
    email: Email | None = None
    roles: list[Role] = Field(default_factory=lambda: [Role.VIEWER])

    @field_validator("roles")
    @classmethod
    def _unique(cls, v: list[Role]) -> list[Role]:
        return list(dict.fromkeys(v))


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    email: str | None
    roles: list[str]
    active: bool
