"""Logging for the processes InfraWatch runs: uvicorn's format, with every
line passed through credential redaction first.

The access log printed `GET /ws?token=iw_…` and push URLs (whose path is the
token) in full; a log shipped to a central store then leaked API tokens."""

from __future__ import annotations

import logging
from typing import Any

from infrawatch.core.redaction import redact_credentials


class RedactCredentials(logging.Filter):
    """Masks credentials in a record's message and its arguments in place
    (arguments stay arguments: uvicorn's access formatter reads them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_credentials(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        return True


def _redacted(value: Any) -> Any:
    return redact_credentials(value) if isinstance(value, str) else value


def logging_config(level: str = "info") -> dict[str, Any]:
    """A dictConfig: uvicorn's loggers and InfraWatch's own, all redacted."""
    redact = {"()": "infrawatch.core.logs.RedactCredentials"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": redact},
        "formatters": {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
                "use_colors": None,
            },
            "named": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(name)s: %(message)s",
                "use_colors": None,
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            },
        },
        "handlers": {
            "default": {
                "formatter": "default",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
            "access": {
                "formatter": "access",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "filters": ["redact"],
            },
            "named": {
                "formatter": "named",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "infrawatch": {"handlers": ["named"], "level": level.upper(), "propagate": False},
        },
    }
