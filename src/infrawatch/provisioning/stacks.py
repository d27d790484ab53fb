"""Stacks: named sets of roles with a JSON-schema'd variable form (shown as
a form in the console, checked before anything is queued)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jsonschema

from infrawatch.core.errors import InvalidInput

HARDENED = ["base", "ssh_hardening", "firewall", "fail2ban", "auto_updates"]
DOMAIN = {
    "type": "string",
    "title": "Domain",
    "description": "the name the site answers to",
    "x-rule": "a domain name such as shop.example.com",
    "pattern": r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*"
    r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$",
}
IDENTIFIER = {
    "type": "string",
    "pattern": r"^[a-z][a-z0-9_]{0,62}$",
    "x-rule": "lower-case letters, digits and _, starting with a letter (63 at most)",
}
REPO = {
    "type": "string",
    "title": "App repository (git URL)",
    "description": "cloned into the app folder; empty: a starter app",
    "maxLength": 2048,
    "x-rule": "a git URL: https://, ssh://, git://, file:// or user@host:path",
    "pattern": r"^(|(https?|ssh|git|file)://\S+|[\w.-]+@[\w.-]+:\S+)$",
}


@dataclass(frozen=True)
class Stack:
    name: str
    description: str
    roles: list[str]
    schema: dict[str, Any]
    # Where it was run on a real host here (docs/provisioning.md).
    tested: str
    # The roles' variables this stack sets unless the run does.
    defaults: dict[str, Any] = field(default_factory=lambda: {"firewall_allowed_ports": [80, 443]})


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": True,  # the roles' own variables may be set too
    }


STACKS = {
    "lamp": Stack(
        "lamp",
        "Apache, MariaDB and PHP from the distribution, a virtual host for the domain",
        [*HARDENED, "lamp"],
        _form(
            {
                "domain": DOMAIN,
                "db_name": {**IDENTIFIER, "title": "Database name", "default": "app"},
                "app_repo": REPO,
            },
            ["domain"],
        ),
        tested="Debian 12",
    ),
    "django": Stack(
        "django",
        "Django under gunicorn behind nginx, on PostgreSQL, all from the distribution",
        [*HARDENED, "django"],
        _form(
            {
                "domain": DOMAIN,
                "app_name": {**IDENTIFIER, "title": "Project name", "default": "webapp"},
                "db_name": {**IDENTIFIER, "title": "Database name", "default": "app"},
                "app_repo": REPO,
            },
            ["domain"],
        ),
        tested="Debian 12",
    ),
    "rails": Stack(
        "rails",
        "Rails under puma behind nginx, on PostgreSQL, with the distribution's Ruby gems",
        [*HARDENED, "rails"],
        _form(
            {
                "domain": DOMAIN,
                "app_name": {**IDENTIFIER, "title": "App name", "default": "webapp"},
                "db_name": {**IDENTIFIER, "title": "Database name", "default": "app"},
                "app_repo": REPO,
            },
            ["domain"],
        ),
        tested="Debian 12",
    ),
}


def check_vars(stack: Stack, variables: dict[str, Any]) -> dict[str, Any]:
    """-> the variables with the form's defaults filled in; a 422 naming the
    first field that does not fit."""
    validator = jsonschema.Draft202012Validator(stack.schema)
    for error in sorted(validator.iter_errors(variables), key=lambda e: list(e.path)):
        field = list(error.path) or (
            [error.validator_value[0]] if error.validator == "required" else []
        )
        if error.validator == "required":
            missing = next(p for p in error.validator_value if p not in variables)
            field = [missing]
            message = f"{missing} is required by the {stack.name} stack"
        else:
            # Plain words, not the schema's regular expression.
            rule = error.schema.get("x-rule") if isinstance(error.schema, dict) else None
            name = ".".join(str(p) for p in field) or "vars"
            message = f"{name} must be {rule}" if rule else f"{name}: {error.message}"
        raise InvalidInput(message, loc=("body", "vars", *field))
    defaults = {
        name: spec["default"]
        for name, spec in stack.schema["properties"].items()
        if "default" in spec
    }
    return {**stack.defaults, **defaults, **variables}
