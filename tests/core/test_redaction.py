from __future__ import annotations

import logging

import pytest

from infrawatch.core.logs import RedactCredentials
from infrawatch.core.redaction import redact_credentials


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("GET /ws?token=iw_abcdef123456 HTTP/1.1", "GET /ws?token=*** HTTP/1.1"),
        ("/cb?code=1&access_token=xyz&x=2", "/cb?code=1&access_token=***&x=2"),
        ("POST /api/v1/push/AbC-123_xyz/start", "POST /api/v1/push/***/start"),
        ("https://ops:hunter2@db.internal:5432/x", "https://ops:***@db.internal:5432/x"),
        ("Authorization: Bearer iw_0123456789abcdef", "Authorization: Bearer ***"),
        (
            "GET /api/v1/servers?q=tag:env=prod&limit=5",
            "GET /api/v1/servers?q=tag:env=prod&limit=5",
        ),
    ],
)
def test_credentials_are_masked_in_a_line(line: str, shown: str) -> None:
    assert redact_credentials(line) == shown


def test_the_filter_masks_arguments_and_keeps_them_arguments() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/ws?token=iw_secret_value", "1.1", 101),
        None,
    )
    assert RedactCredentials().filter(record)
    assert record.args == ("127.0.0.1:5000", "GET", "/ws?token=***", "1.1", 101)
    assert "iw_secret_value" not in record.getMessage()
