"""Composition: every domain's routes under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from infrawatch.accounts.router import admin_router, auth_router, me_router
from infrawatch.audit.router import router as audit_router
from infrawatch.inventory.router import router as inventory_router

PUBLIC_API_PATHS = frozenset({"/api/v1/auth/login"})


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    for part in (auth_router, me_router, admin_router, audit_router, inventory_router):
        router.include_router(part)
    return router
