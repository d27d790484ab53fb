"""One error hierarchy. Services raise these; the app turns them into
`{"detail": ...}` responses with the status the error carries."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers

    def detail(self) -> Any:
        return self.message


class Unauthorized(AppError):
    status_code = 401

    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PreconditionFailed(AppError):
    status_code = 412


class InvalidInput(AppError):
    """422 naming the field, in the same shape FastAPI uses for its own
    validation errors, so clients parse one format."""

    status_code = 422

    def __init__(
        self,
        message: str,
        *,
        loc: tuple[str | int, ...] = ("body",),
        error_type: str = "value_error",
        ctx: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        entry: dict[str, Any] = {"loc": list(loc), "msg": message, "type": error_type}
        if ctx:
            entry["ctx"] = ctx
        self.errors = errors if errors is not None else [entry]

    def detail(self) -> Any:
        return self.errors


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after_seconds))})


class UpstreamFailed(AppError):
    """Something we call on the caller's behalf (a cloud provider's API)
    refused or failed: 502, with its own words."""

    status_code = 502
