"""The fleet document: YAML (one file, several, a folder, several documents
in a stream), merged into one set of items per kind, keyed by name; and the
secret references in it.

    groups:   [{name: edge, query: "tag:role=edge"}]
    servers:  [{name: web-1, hostname: web-1.example.com, groups: [web]}]
    monitors: [{name: web-1 https, type: http, target: "https://web-1/", server: web-1}]
    channels: [{name: ops, url: "${secret:ops-ntfy}"}]
    rules:    [{name: page ops, channels: [ops], events: [down, recovered]}]

A secret is never written in the document: `${secret:NAME}` names a stored
secret (credentials), `${env:NAME}` an environment variable of whoever runs
`infrawatch apply` (never the server's own environment over the API: that
would let a caller copy the server's variables into a channel URL)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.crypto import Keyring
from infrawatch.core.errors import Forbidden, InvalidInput, NotFound
from infrawatch.credentials import stored_secrets
from infrawatch.fleet.kinds import BY_KEY, KINDS

VERSION = 1
REFERENCE = re.compile(r"\$\{(secret|env):([A-Za-z0-9_.-]{1,128})\}")
Items = dict[str, dict[str, dict[str, Any]]]  # kind → name → the item as written


class _WithoutAliases(yaml.SafeLoader):
    """YAML without anchors and aliases: nine nested aliases of ten make a
    billion items for whoever walks them (validation would), from a few
    hundred bytes. A fleet document has no use for them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not read in a fleet document"
            )
        return super().compose_node(parent, index)


def read_paths(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """(where, text) of every file given, a folder's *.yaml and *.yml in
    name order."""
    found: list[tuple[str, str]] = []
    for path in paths:
        files = (
            sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
            if path.is_dir()
            else [path]
        )
        for file in files:
            found.append((str(file), file.read_text()))
    return found


def parse(sources: Iterable[tuple[str, str | dict[str, Any]]]) -> Items:
    """Every document of every source (YAML text, or a mapping already read)
    merged, each item checked for its shape (a mapping with a name, once per
    kind). Fields are checked later, against the kind's own schema."""
    items: Items = {}
    for where, text in sources:
        if isinstance(text, dict):
            _merge(items, where, text)
            continue
        try:
            documents = list(yaml.load_all(text, Loader=_WithoutAliases))
        except yaml.YAMLError as exc:
            raise InvalidInput(
                f"{where}: not valid YAML ({exc})", loc=("body", "document")
            ) from None
        for document in documents:
            if document is None:
                continue
            _merge(items, where, document)
    return items


def _merge(items: Items, where: str, document: Any) -> None:
    if not isinstance(document, dict):
        raise InvalidInput(f"{where}: a document is a mapping of kinds", loc=("body", "document"))
    version = document.get("version", VERSION)
    if version != VERSION:
        raise InvalidInput(
            f"{where}: version {version!r} is not one this server reads (it reads {VERSION})",
            loc=("body", "document", "version"),
        )
    unknown = sorted(str(k) for k in set(document) - {"version", *BY_KEY})
    if unknown:
        raise InvalidInput(
            f"{where}: unknown kind(s) {', '.join(unknown)}; "
            f"known: {', '.join(k.key for k in KINDS)}",
            loc=("body", "document", unknown[0]),
        )
    for kind in KINDS:
        if kind.key not in document:
            continue
        listed = document[kind.key]
        if listed is None:
            listed = []
        if not isinstance(listed, list):
            raise InvalidInput(f"{where}: {kind.key} is a list", loc=("body", "document", kind.key))
        of_kind = items.setdefault(kind.key, {})
        key = kind.key_field
        for index, item in enumerate(listed):
            loc = ("body", "document", kind.key, index)
            if not isinstance(item, dict) or not isinstance(item.get(key), str):
                raise InvalidInput(
                    f"{where}: each of {kind.key} is a mapping with a {key}", loc=loc
                )
            if item[key] in of_kind:
                raise InvalidInput(
                    f"{where}: {kind.label} {item[key]!r} is given twice", loc=(*loc, key)
                )
            of_kind[item[key]] = item


def references_in(value: Any) -> bool:
    return isinstance(value, str) and REFERENCE.search(value) is not None


async def resolve(
    session: AsyncSession,
    keyring: Keyring,
    text: str,
    loc: tuple[str | int, ...],
    *,
    environment: bool,
    stored: bool = True,
) -> str:
    """The text with its references replaced by what they name."""
    parts: list[str] = []
    at = 0
    for match in REFERENCE.finditer(text):
        parts.append(text[at : match.start()])
        source, name = match.groups()
        if source == "env":
            if not environment:
                raise InvalidInput(
                    "${env:…} is read by `infrawatch apply` on the machine that runs it; "
                    "over the API, store the value as a secret and use ${secret:…}",
                    loc=loc,
                )
            if name not in os.environ:
                raise InvalidInput(f"the environment has no {name}", loc=loc)
            parts.append(os.environ[name])
        else:
            if not stored:
                raise Forbidden("a document that refers to stored secrets is an admin's to apply")
            try:
                parts.append(await stored_secrets.reveal_secret(session, keyring, name))
            except NotFound:
                raise InvalidInput(f"no stored secret named {name!r}", loc=loc) from None
        at = match.end()
    parts.append(text[at:])
    return "".join(parts)


def render(items: dict[str, list[dict[str, Any]]]) -> str:
    """A document in the format `parse` reads, kinds in dependency order."""
    document: dict[str, Any] = {"version": VERSION}
    for kind in KINDS:
        if kind.key in items:
            document[kind.key] = items[kind.key]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def json_schema() -> dict[str, Any]:
    """The document's JSON schema, for editors (docs/fleet.schema.json):
    each kind's create schema with ids replaced by names and secrets by
    references."""
    definitions: dict[str, Any] = {}
    properties: dict[str, Any] = {"version": {"const": VERSION}}
    for kind in KINDS:
        item = kind.schema.model_json_schema(ref_template="#/$defs/{model}")
        definitions.update(item.pop("$defs", {}))
        fields = item["properties"]
        required = [r for r in item.get("required", []) if r not in kind.secrets]
        for document_field, ref in kind.refs.items():
            fields.pop(ref.field, None)
            fields[document_field] = (
                {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": f"names of {ref.kind}",
                }
                if ref.many
                else {"type": ["string", "null"], "description": f"the name of one of {ref.kind}"}
            )
            required = [document_field if r == ref.field else r for r in required]
        for secret in kind.secrets:
            fields[secret] = {
                "type": ["string", "null"],
                "pattern": REFERENCE.pattern,
                "description": "a ${secret:NAME} or ${env:NAME} reference, never the value; "
                "left out, what is stored stays",
            }
        item["required"] = required
        properties[kind.key] = {"type": "array", "items": item}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "InfraWatch fleet document",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "$defs": definitions,
    }
