"""The OpenAPI document says which errors each route can answer with, and
how to authenticate, so /docs can authorize and schemathesis can check the
error responses too (the document listed only 200 and 422)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERRORS = {
    "401": "not authenticated: no, an expired or a revoked token",
    "403": "authenticated, but the role or a read-only token does not allow this",
    "404": "no such object (in the path, or one the request names)",
    "409": "conflicts with the current state (a duplicate name, an Idempotency-Key reused, "
    "a feature switched off)",
    "412": "If-Match does not match the current version",
    "413": "the request body is larger than INFRAWATCH_MAX_BODY_BYTES",
    "429": "too many failed logins; see Retry-After",
    "502": "the cloud provider asked on the caller's behalf refused or failed (its words)",
    "503": "the database is unavailable; see Retry-After",
}
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object"}},
                {"type": "object"},
            ]
        }
    },
}
WRITES = {"post", "put", "patch", "delete"}


def install_openapi(app: FastAPI, public_paths: Collection[str], login_path: str) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = document(schema, public_paths, login_path)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(
    schema: dict[str, Any], public_paths: Collection[str], login_path: str
) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "an API token (`infrawatch tokens create`) or a console session",
        }
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            codes = _errors_of(path, method, operation, public_paths, login_path)
            if path.startswith("/api/") and path not in public_paths:
                operation["security"] = [{"bearer": []}]
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": ERRORS[code],
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                )
    return schema


def _errors_of(
    path: str,
    method: str,
    operation: dict[str, Any],
    public_paths: Collection[str],
    login_path: str,
) -> list[str]:
    codes = ["503"]  # every route may meet the database away
    parameters = {p.get("name", "").lower() for p in operation.get("parameters", [])}
    if path.startswith("/api/") and path not in public_paths:
        codes += ["401", "403"]
    if "{" in path or path.startswith("/api/"):
        codes.append("404")  # in the path, or named in the body or the query
    if method in WRITES or path.startswith("/api/"):
        codes.append("409")  # writes; and reads of a feature that is switched off
    if "requestBody" in operation or method in WRITES:
        codes.append("413")
    if "if-match" in parameters:
        codes.append("412")
    if path == login_path:
        codes += ["401", "429"]
    elif path in public_paths and "authorization" in parameters:
        codes.append("401")  # a public path with a credential of its own (an agent's)
    if path.startswith("/api/v1/provider-accounts/{") and path.endswith(
        ("regions", "sizes", "nodes")
    ):
        codes.append("502")
    return codes
