"""Config as code: a fleet document compared with what is stored (a plan of
creates, updates and deletes, shown before anything happens) and applied
all or nothing, in one transaction under one request id, through the
domains' services. `export` writes what is stored in the same form, so
applying an export changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.context import OperationContext
from infrawatch.core.errors import AppError, InvalidInput
from infrawatch.core.validation import plain_message
from infrawatch.fleet.document import Items, references_in, resolve
from infrawatch.fleet.kinds import BY_KEY, KINDS, Existing, Kind, Tools
from infrawatch.monitoring.target_secrets import MASK, split_password

Action = Literal["create", "update", "delete"]
# Stand-in ids for what the plan would create: the comparison needs ids
# where the stored objects have them.
PLANNED = uuid.UUID("5e5c0d1e-0000-4000-8000-000000000000")


@dataclass
class Change:
    action: Action
    kind: str
    name: str
    fields: list[str] = field(default_factory=list)  # for updates, in the document's names


@dataclass
class Step:
    change: Change
    values: dict[str, Any]  # the schema's fields, references as names (resolved at apply)
    existing: Existing | None


@dataclass
class Plan:
    steps: list[Step]
    # The ids of what is stored, by kind and name, as the plan read them:
    # applying in the same transaction needs them again.
    stored_ids: dict[str, dict[str, uuid.UUID]] = field(default_factory=dict)

    @property
    def changes(self) -> list[Change]:
        return [s.change for s in self.steps]


def _planned_id(kind: str, name: str) -> uuid.UUID:
    return uuid.uuid5(PLANNED, f"{kind}/{name}")


def _loc(kind: Kind, name: str, *rest: str | int) -> tuple[str | int, ...]:
    return ("body", "document", kind.key, name, *rest)


async def make_plan(
    session: AsyncSession,
    tools: Tools,
    items: Items,
    *,
    prune: bool,
    environment: bool,
) -> Plan:
    """What applying `items` would do. Kinds the document does not list are
    left alone; with `prune`, objects of a listed kind that the document
    does not name are deleted."""
    existing = {kind.key: await kind.load(session, tools) for kind in KINDS if kind.key in items}
    for kind in KINDS:  # kinds only referred to are read too, to resolve names
        referred = [*(ref.kind for ref in kind.refs.values()), *kind.needs]
        for other in referred:
            if kind.key in items and other not in existing:
                existing[other] = await BY_KEY[other].load(session, tools)
    stored_ids = {
        key: {name: found.id for name, found in of_kind.items()}
        for key, of_kind in existing.items()
    }
    ids = {key: dict(of_kind) for key, of_kind in stored_ids.items()}
    for key, of_kind in items.items():
        for name in of_kind:
            ids[key].setdefault(name, _planned_id(key, name))
    steps: list[Step] = []
    for kind in KINDS:
        for name, item in items.get(kind.key, {}).items():
            step = await _step(
                session, tools, kind, name, item, existing[kind.key], ids, environment
            )
            if step is not None:
                steps.append(step)
    if prune:
        for kind in reversed(KINDS):
            for name, found in existing.get(kind.key, {}).items():
                if kind.key in items and name not in items[kind.key]:
                    steps.append(Step(Change("delete", kind.key, name), {}, found))
    return Plan(steps, stored_ids)


async def _step(
    session: AsyncSession,
    tools: Tools,
    kind: Kind,
    name: str,
    item: dict[str, Any],
    existing: dict[str, Existing],
    ids: dict[str, dict[str, uuid.UUID]],
    environment: bool,
) -> Step | None:
    values = await _resolved(session, tools, kind, name, item, environment)
    current = existing.get(name)
    given_secrets = {s: values[s] for s in kind.secrets if s in values}
    if current is not None and kind.read_secret is not None:
        for secret in kind.secrets:  # left out: what is stored stays
            if secret not in values:
                kept = await kind.read_secret(session, tools, current.id, secret)
                if kept is not None:
                    values[secret] = kept
    desired = _normal(kind, name, _with_ids(kind, name, values, ids))
    if current is None:
        return Step(Change("create", kind.key, name), values, None)
    # Secrets are not compared here (they are left out of both sides), but
    # the schema wants them to be there.
    secrets_for_schema = {s: values[s] for s in kind.secrets if s in values}
    stored = _normal(kind, name, {**current.fields, **secrets_for_schema})
    changed = [
        f
        for f in desired
        if desired[f] != stored.get(f)
        # Left out, a derived field is whatever the service makes of it.
        and not (f in kind.derived and values.get(f) is None)
    ]
    if kind.read_secret is not None:
        for secret, value in given_secrets.items():
            if value != await kind.read_secret(session, tools, current.id, secret):
                changed.append(secret)
    if kind.target_password is not None and "target" not in changed:
        _, password = split_password(str(values.get("target", "")))
        if password not in (None, MASK) and password != await kind.target_password(
            session, tools, current.id
        ):
            changed.append("target")
    if not changed:
        return None
    for fixed in kind.fixed:
        if fixed in changed:
            raise InvalidInput(
                f"{kind.label} {name!r}: {fixed} is set when it is created "
                f"({stored.get(fixed)!r}); delete it and create another to change it",
                loc=_loc(kind, name, fixed),
            )
    refs = {ref.field: (doc, ref) for doc, ref in kind.refs.items()}
    updates: dict[str, Any] = {}
    for f in changed:
        if f in refs:
            document_field, ref = refs[f]
            # Left out of the document: back to none.
            updates[document_field] = values.get(document_field, [] if ref.many else None)
        else:
            # Left out of the document: back to the schema's default.
            updates[f] = values[f] if f in values else desired[f]
    fields = sorted(refs[f][0] if f in refs else f for f in changed)
    return Step(Change("update", kind.key, name, fields), updates, current)


async def _resolved(
    session: AsyncSession,
    tools: Tools,
    kind: Kind,
    name: str,
    item: dict[str, Any],
    environment: bool,
) -> dict[str, Any]:
    """The item with its secret references replaced; a secret written out
    in clear is refused."""
    values = dict(item)

    async def resolved(text: str, loc: tuple[str | int, ...]) -> str:
        return await resolve(
            session,
            tools.keyring,
            text,
            loc,
            environment=environment,
            stored=tools.may_read_secrets,
        )

    for key, value in item.items():
        loc = _loc(kind, name, key)
        if key in kind.secrets:
            if value is None:
                continue
            if not references_in(value):
                raise InvalidInput(
                    f"{kind.label} {name!r}: {key} is a secret; give it as ${{secret:NAME}} "
                    "or ${env:NAME}, never in the document",
                    loc=loc,
                )
            values[key] = await resolved(value, loc)
        elif isinstance(value, str) and references_in(value):
            if key != "target":
                raise InvalidInput(
                    f"{kind.label} {name!r}: references are for secrets ({key} is not one)",
                    loc=loc,
                )
            values[key] = await resolved(value, loc)
        elif key == "target" and isinstance(value, str):
            _, password = split_password(value)
            if password is not None and password != MASK:
                raise InvalidInput(
                    f"{kind.label} {name!r}: the password in target is a secret; write "
                    "user:${secret:NAME}@host, never the password itself",
                    loc=loc,
                )
    return values


def _with_ids(
    kind: Kind, name: str, values: dict[str, Any], ids: Mapping[str, Mapping[str, uuid.UUID]]
) -> dict[str, Any]:
    """The item in its schema's terms: names of other objects made ids."""
    converted = dict(values)
    for document_field, ref in kind.refs.items():
        if ref.field in converted:
            raise InvalidInput(
                f"{kind.label} {name!r}: a document names what it refers to: write "
                f"{document_field} ({ref.kind} by name), not {ref.field}",
                loc=_loc(kind, name, ref.field),
            )
        if document_field not in converted:
            continue
        named = converted.pop(document_field)
        known = ids.get(ref.kind, {})
        listed = named if ref.many else ([] if named is None else [named])
        if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
            raise InvalidInput(
                f"{kind.label} {name!r}: {document_field} names "
                + ("a list of " if ref.many else "one of ")
                + ref.kind,
                loc=_loc(kind, name, document_field),
            )
        missing = [n for n in listed if n not in known]
        if missing:
            raise InvalidInput(
                f"{kind.label} {name!r}: {document_field} names what neither the document "
                f"nor the database has: {', '.join(missing)}",
                loc=_loc(kind, name, document_field),
            )
        found = [known[n] for n in listed]
        converted[ref.field] = found if ref.many else (found[0] if found else None)
    if kind.nested_ids is not None:

        def resolve(other: str, named: Any, where: tuple[str | int, ...]) -> uuid.UUID:
            known = ids.get(other, {})
            if not isinstance(named, str) or named not in known:
                raise InvalidInput(
                    f"{kind.label} {name!r}: {'.'.join(map(str, where))} names what neither "
                    f"the document nor the database has: {named!r}",
                    loc=_loc(kind, name, *where),
                )
            return known[named]

        try:
            converted = kind.nested_ids(converted, resolve)
        except InvalidInput as exc:
            raise _in_document(kind, name, exc) from None
    return converted


def _normal(kind: Kind, name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The fields as the schema makes them (defaults filled in), to compare."""
    try:
        model = kind.schema.model_validate(values)
        dumped = model.model_dump(mode="json", exclude=set(kind.secrets))
        if kind.normalize is not None:
            dumped = kind.normalize(dumped)
    except (ValidationError, InvalidInput) as exc:
        raise _in_document(kind, name, exc) from None
    # Ids name a set: the order they are listed in says nothing.
    return {k: sorted(v) if k.endswith("_ids") else v for k, v in dumped.items()}


async def apply_plan(
    session: AsyncSession, ctx: OperationContext, tools: Tools, plan: Plan
) -> None:
    """Every step, in the caller's transaction: a step that fails raises
    (naming the object), and the caller's rollback undoes the others."""
    ids = {key: dict(of_kind) for key, of_kind in plan.stored_ids.items()}
    for step in plan.steps:
        kind = BY_KEY[step.change.kind]
        name = step.change.name
        try:
            if step.change.action == "create":
                values = _with_ids(kind, name, step.values, ids)
                ids.setdefault(kind.key, {})[name] = await kind.create(session, ctx, tools, values)
            elif step.change.action == "update":
                assert step.existing is not None
                values = _with_ids(kind, name, step.values, ids)
                await kind.update(session, ctx, tools, step.existing.id, values)
            else:
                assert step.existing is not None
                await kind.delete(session, ctx, tools, step.existing.id)
        except (ValidationError, InvalidInput) as exc:
            raise _in_document(kind, name, exc) from None
        except AppError as exc:
            exc.message = f"{step.change.action} {kind.label} {name!r}: {exc.message}"
            exc.args = (exc.message,)
            raise


async def export(session: AsyncSession, tools: Tools) -> dict[str, list[dict[str, Any]]]:
    """Everything config as code manages, in the document's form: names for
    references, secrets left out (an apply of this keeps them as stored)."""
    loaded = {kind.key: await kind.load(session, tools) for kind in KINDS}
    names = {
        key: {found.id: name for name, found in of_kind.items()} for key, of_kind in loaded.items()
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        listed = []
        for name, found in sorted(loaded[kind.key].items()):
            values = {k: v for k, v in found.fields.items() if k not in kind.secrets}
            for document_field, ref in kind.refs.items():
                stored = values.pop(ref.field, None)
                # An id naming nothing live (a server deleted under its
                # monitors, a rule's monitor since removed) has no name to
                # write: left out, and an apply of this export drops it.
                named = [names[ref.kind].get(uuid.UUID(str(i))) for i in _listed(stored)]
                known = sorted(n for n in named if n is not None)
                values[document_field] = known if ref.many else (known[0] if known else None)
            if kind.nested_names is not None:

                def name_of(other: str, stored: Any) -> str | None:
                    return names[other].get(uuid.UUID(str(stored))) if stored else None

                values = kind.nested_names(values, name_of)
            listed.append(_tidy(kind, name, values))
        out[kind.key] = listed
    return out


FIRST = ("name", "type", "kind")  # what a reader wants to see first


def _tidy(kind: Kind, name: str, values: dict[str, Any]) -> dict[str, Any]:
    """An exported item without what would come out the same if it were
    left out (defaults, derived values, empty references), its name and
    type first."""
    refs = {document_field for document_field in kind.refs}
    full = _normal(kind, name, _with_ids(kind, name, values, STAND_INS)) if kind.derived else None
    kept: dict[str, Any] = {}
    for key, value in values.items():
        field_info = kind.schema.model_fields.get(key)
        if key in refs and value in (None, []):
            continue
        if (
            key not in FIRST
            and field_info is not None
            and not field_info.is_required()
            and value == field_info.get_default(call_default_factory=True)
        ):
            continue
        if full is not None and key in kind.derived:
            without = {k: v for k, v in values.items() if k != key}
            if _normal(kind, name, _with_ids(kind, name, without, STAND_INS)) == full:
                continue
        kept[key] = value
    first = {key: kept.pop(key) for key in FIRST if key in kept}
    kept.pop(kind.key_field, None)
    return {kind.key_field: name, **first, **kept}


class _StandIns(dict[str, uuid.UUID]):
    """Any name, as the id a plan would give it: an exported item checked
    against its schema names only what exists, but needs ids to be checked."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __missing__(self, name: str) -> uuid.UUID:
        return _planned_id(self.kind, name)


STAND_INS = {kind.key: _StandIns(kind.key) for kind in KINDS}


def _listed(stored: Any) -> list[Any]:
    if stored is None:
        return []
    return list(stored) if isinstance(stored, list) else [stored]


def _in_document(kind: Kind, name: str, error: ValidationError | InvalidInput) -> InvalidInput:
    """A schema's or a service's error put under the object's place in the
    document (`body.document.<kind>.<name>.<field>`), list indexes kept as
    numbers. One already placed there is returned as it is."""
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where: list[Any] = list(first["loc"])
        message = plain_message(dict(first))
        if where:
            message = f"{'.'.join(map(str, where))}: {message}"
    else:
        where = list(error.errors[0]["loc"]) if error.errors else []
        if where[:3] == ["body", "document", kind.key]:
            return error
        where = where[1:] if where[:1] == ["body"] else where
        message = error.message
    place = [p if isinstance(p, int) else str(p) for p in where]
    return InvalidInput(f"{kind.label} {name!r}: {message}", loc=_loc(kind, name, *place))
