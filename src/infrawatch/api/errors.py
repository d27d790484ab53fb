"""Every error leaves as `{"detail": ...}` with a 4xx that fits; an
integrity or data error from the database is the client's conflict or bad
value, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from infrawatch.core.db import UNAVAILABLE
from infrawatch.core.errors import AppError
from infrawatch.core.outage import OutageReporter
from infrawatch.core.validation import plain_message

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
DATABASE_OUTAGE = OutageReporter(log, "answering requests from the database")


# For a browser asking for a page: a rendered error page, or None for JSON.
HtmlErrors = Callable[[Request, int, str], Awaitable[Response | None]]


def install_error_handlers(app: FastAPI, html_errors: HtmlErrors | None = None) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        if html_errors is not None and isinstance(exc.detail(), str):
            page = await html_errors(request, exc.status_code, exc.detail())
            if page is not None:
                page.headers.update(exc.headers or {})
                return page
        return JSONResponse(
            {"detail": exc.detail()}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Our services check first; this is the race two requests ran.
        log.info("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
        return JSONResponse(
            {"detail": "this conflicts with a concurrent change; try again"}, status_code=409
        )

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        log.info("data error on %s %s: %s", request.method, request.url.path, exc.orig)
        return JSONResponse({"detail": "a value is out of range for its field"}, status_code=422)

    async def _unavailable(request: Request, exc: Exception) -> Response:
        # Logged once per outage by the reporter, not once per request.
        DATABASE_OUTAGE.failed(exc)
        return JSONResponse(
            {"detail": "the database is unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, _unavailable)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to bytes that are not JSON at all (bad UTF-8):
            # bad input like any other, a 422 that names the body.
            error = {"loc": ["body"], "msg": "the body is not valid JSON", "type": "json_invalid"}
            return JSONResponse({"detail": [error]}, status_code=422)
        if html_errors is not None and exc.status_code in (404, 405):
            # An unknown console path, typed or followed from an old link.
            message = "there is no page here" if exc.status_code == 404 else str(exc.detail)
            page = await html_errors(request, exc.status_code, message)
            if page is not None:
                return page
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": list(e.get("loc", ())),
                "msg": plain_message(dict(e)),
                "type": e.get("type", "value_error"),
            }
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)
