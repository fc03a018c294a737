"""User routes (``user.manage``)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from crmcore.api.app import ApiSettings, _json, unit
from crmcore.schemas import UserCreate, UserRead


def register(r: APIRouter, settings: ApiSettings) -> None:
    @r.get("/users", response_model=list[UserRead], tags=["users"])
    def list_users(request: Request) -> Any:
        with unit(request, write=False) as uow:
            uow.require("user.manage")
            return [_json(UserRead.model_validate(u)) for u in uow.users.list()]

    @r.post("/users", status_code=201, response_model=UserRead, tags=["users"])
    def add_user(request: Request, data: UserCreate) -> Any:
        with unit(request, write=True) as uow:
            uow.require("user.manage")
            return _json(UserRead.model_validate(uow.users.add(data)))
