"""Composition: every domain's routes under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from infrawatch.accounts.router import admin_router, auth_router, me_router
from infrawatch.alerting.router import router as alerting_router
from infrawatch.audit.router import router as audit_router
from infrawatch.credentials.router import operator_router as credentials_operator_router
from infrawatch.credentials.router import router as credentials_router
from infrawatch.credentials.router import secrets_router
from infrawatch.discovery.router import router as discovery_router
from infrawatch.discovery.router import validate_router
from infrawatch.fleet.router import router as fleet_router
from infrawatch.inventory.router import router as inventory_router
from infrawatch.jobs.router import router as jobs_router
from infrawatch.monitoring.router import agent_report_router, agents_router, push_router
from infrawatch.monitoring.router import router as monitoring_router
from infrawatch.provisioning.cloud_router import (
    accounts_router,
    builds_router,
    hibernation_router,
)
from infrawatch.provisioning.router import lab_router, projects_router
from infrawatch.provisioning.router import router as provisioning_router
from infrawatch.statuspage.router import router as statuspage_router

# No bearer token: the login itself, and push URLs whose token is the credential.
PUBLIC_API_PATHS = frozenset(
    {
        "/api/v1/auth/login",
        "/api/v1/push/{token}",
        "/api/v1/push/{token}/start",
        "/api/v1/push/{token}/fail",
        "/api/v1/push/{token}/{exit_code}",
        "/api/v1/agents/report",
    }
)


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    parts = (
        auth_router,
        me_router,
        admin_router,
        audit_router,
        # Before the inventory's: /servers/create is not a server id.
        builds_router,
        inventory_router,
        monitoring_router,
        push_router,
        agent_report_router,
        agents_router,
        alerting_router,
        jobs_router,
        credentials_router,
        credentials_operator_router,
        secrets_router,
        validate_router,
        discovery_router,
        projects_router,
        provisioning_router,
        lab_router,
        accounts_router,
        hibernation_router,
        statuspage_router,
        fleet_router,
    )
    for part in parts:
        router.include_router(part)
    return router
