"""Credentials in free text (log lines, error messages, URLs), masked.

One place for the shapes a credential takes in a URL or a line of text, so
the access log, the probes' messages and the alert texts mask the same
things the same way."""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@ — anywhere in a text.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#\s]*):(?P<secret>[^@/?#\s]+)@")
# ?token=… &password=… in a query string (the WebSocket's ?token=, OAuth's
# access_token, and the usual names for secrets in URLs).
_QUERY = re.compile(
    r"(?P<head>[?&](?:token|access_token|api_key|apikey|key|password|passwd|secret|"
    r"client_secret|signature|sig|auth)=)(?P<secret>[^&#\s\"']+)",
    re.IGNORECASE,
)
# The push token is the path itself: /api/v1/push/<token>[/start|/fail|/N].
_PUSH_PATH = re.compile(r"(?P<head>/api/v1/push/)(?P<secret>[A-Za-z0-9_-]+)")
# Authorization header values that reached a message.
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})")


def redact_userinfo(text: str) -> str:
    return _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)


def redact_credentials(text: str) -> str:
    """Every credential shape this module knows, masked."""
    if not text:
        return text
    for pattern in (_QUERY, _PUSH_PATH, _BEARER):
        text = pattern.sub(lambda m: f"{m['head']}{MASK}", text)
    return redact_userinfo(text)
