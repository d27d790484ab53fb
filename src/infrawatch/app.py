"""create_app(settings): the one place a running InfraWatch is assembled."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrawatch import __version__, migrations
from infrawatch.alerting.runner import Alerting
from infrawatch.api.body_limit import BodySizeLimit
from infrawatch.api.docs import install_docs
from infrawatch.api.errors import install_error_handlers
from infrawatch.api.health import router as health_router
from infrawatch.api.metrics import router as metrics_router
from infrawatch.api.openapi import install_openapi
from infrawatch.api.router import PUBLIC_API_PATHS, api_router
from infrawatch.core.config import Settings
from infrawatch.core.keys import check_keyring
from infrawatch.core.runtime import Runtime, assemble_runtime
from infrawatch.credentials import tasks as credential_tasks
from infrawatch.discovery import tasks as discovery_tasks
from infrawatch.inventory import templates as inventory_templates
from infrawatch.inventory.router import MAX_IMPORT_BYTES
from infrawatch.jobs.context import JobServices
from infrawatch.jobs.registry import JobRegistry
from infrawatch.jobs.worker import JobWorker, WorkerOptions
from infrawatch.monitoring import service as monitoring
from infrawatch.monitoring import templates as monitor_templates
from infrawatch.monitoring.engine.runner import Engine, EngineOptions
from infrawatch.provisioning import builds as provisioning_builds
from infrawatch.provisioning import hibernation as provisioning_hibernation
from infrawatch.provisioning import projects as provisioning_projects
from infrawatch.provisioning import tasks as provisioning_tasks
from infrawatch.web.hub import Hub
from infrawatch.web.routes import html_error, install_console

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """One id ties together the audit records of a request (and of a bulk
    action); a client may choose it to correlate with its own logs. Plain
    ASGI: BaseHTTPMiddleware would cost a task and a stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get("x-request-id", "")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def build_runtime(settings: Settings, *, create_data_dir: bool = True) -> Runtime:
    return assemble_runtime(settings, build_job_registry, create_data_dir=create_data_dir)


def build_job_registry(settings: Settings) -> JobRegistry:
    """Every job type and periodic job of every domain."""
    registry = JobRegistry()
    for job_type in (*credential_tasks.JOB_TYPES, *discovery_tasks.JOB_TYPES):
        registry.register(job_type)
    registry.register(
        dataclasses.replace(provisioning_tasks.RUN, per_worker=settings.provisioning_max_processes)
    )
    registry.register(provisioning_tasks.ROLLBACK)
    registry.register(provisioning_projects.SYNC)
    for job_type in (*provisioning_builds.JOB_TYPES, *provisioning_hibernation.JOB_TYPES):
        registry.register(job_type)
    for periodic in provisioning_hibernation.PERIODIC:
        registry.schedule(periodic)
    for periodic in credential_tasks.PERIODIC:
        registry.schedule(periodic)
    return registry


def build_engine(runtime: Runtime) -> Engine:
    settings = runtime.settings
    options = EngineOptions(
        location=settings.engine_location,
        max_concurrency=settings.engine_max_concurrency,
        per_host_concurrency=settings.engine_per_host_concurrency,
        lease_seconds=settings.engine_lease_seconds,
        raw_retention_hours=settings.results_retention_hours,
        source_address=settings.probe_source_address,
    )
    return Engine(runtime.db, runtime.bus, options, runtime.keyring)


def start_background_work(runtime: Runtime) -> list[asyncio.Task[None]]:
    """The engine, alerting and the job worker, in `serve` (embedded) and in `worker`."""
    settings = runtime.settings
    tasks = []
    if settings.engine_enabled:
        runtime.engine = build_engine(runtime)
        tasks.append(asyncio.create_task(runtime.engine.run(), name="monitoring-engine"))
    if settings.alerting_enabled:
        runtime.alerting = Alerting(
            runtime.db, runtime.bus, runtime.keyring, settle_seconds=settings.alert_settle_seconds
        )
        tasks.append(asyncio.create_task(runtime.alerting.run(), name="alerting"))
    if settings.jobs_enabled:
        runtime.jobs = JobWorker(
            JobServices(runtime.db, runtime.bus, runtime.keyring, settings),
            runtime.job_registry,
            WorkerOptions(
                lease_seconds=settings.jobs_lease_seconds, max_running=settings.jobs_max_running
            ),
        )
        tasks.append(asyncio.create_task(runtime.jobs.run(), name="jobs"))
    return tasks


def create_app(settings: Settings, *, run_migrations: bool = True) -> FastAPI:
    runtime = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            await migrations.upgrade(runtime.db.engine)
        await check_keyring(runtime.db, runtime.keyring)
        sealed = 0
        # Looked for first in a read: a start with nothing to seal (nearly
        # every start) takes no write lock beside other processes' writes.
        async with runtime.db.unit_of_work(write=False) as session:
            unsealed = await monitoring.has_clear_target_passwords(session)
        if unsealed:
            async with runtime.db.unit_of_work() as session:
                sealed = await monitoring.seal_target_passwords(session, runtime.keyring)
        if sealed:
            log.info("moved %d monitor target passwords into encrypted storage", sealed)
        await runtime.bus.start()
        background = start_background_work(runtime)
        background.append(asyncio.create_task(hub.run(), name="websocket-hub"))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await runtime.bus.stop()
            await runtime.db.dispose()

    app = FastAPI(
        title="InfraWatch",
        version=__version__,
        description="Inventory, monitoring, alerting and provisioning for server fleets.",
        lifespan=lifespan,
        docs_url=None,  # install_docs: served from vendored files, not a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    hub = app.state.hub = Hub(runtime.bus)
    inventory_templates.on_instantiate(
        "monitoring", monitor_templates.instantiate_hook(runtime.keyring)
    )
    install_error_handlers(app, html_error)

    app.add_middleware(RequestIdMiddleware)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(api_router())
    install_openapi(app, PUBLIC_API_PATHS, "/api/v1/auth/login")
    install_docs(app)
    app.add_middleware(
        BodySizeLimit,
        limit=runtime.settings.max_body_bytes,
        overrides={app.url_path_for("import_servers"): MAX_IMPORT_BYTES},
    )
    install_console(app)
    return app
