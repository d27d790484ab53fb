"""Reading a peer certificate: expiry, issuer, SANs, whatever verification
said. Parsed certificates are cached by their bytes (a fleet presents few
distinct ones), so a check pays for the parse once per certificate."""

from __future__ import annotations

import functools
import ssl
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from infrawatch.core.clock import utcnow


@functools.lru_cache(maxsize=4096)
def describe_certificate(der: bytes) -> dict[str, Any]:
    cert = x509.load_der_x509_certificate(der)
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in names.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in names.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    return {
        "subject": _common_name(cert.subject),
        "issuer": _common_name(cert.issuer),
        "sans": sans,
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
        "serial": format(cert.serial_number, "x"),
    }


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def certificate_facts(der: bytes, now: datetime | None = None) -> dict[str, Any]:
    info = describe_certificate(der)
    left = info["not_after"] - (now or utcnow())
    return {
        "subject": info["subject"],
        "issuer": info["issuer"],
        "sans": info["sans"],
        "not_after": info["not_after"].isoformat(),
        "days_left": round(left.total_seconds() / 86400, 2),
        "expires_in_ms": left.total_seconds() * 1000,
    }


def peer_der(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)


@functools.cache
def client_context(verify: bool) -> ssl.SSLContext:
    """Two shared contexts: building one costs more than a whole check."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
