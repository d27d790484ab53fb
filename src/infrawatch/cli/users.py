"""`infrawatch users …` and `infrawatch tokens …`."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from infrawatch.cli.common import fail, fail_invalid, print_out, run, sub_app

if TYPE_CHECKING:
    from infrawatch.core.runtime import Runtime

users_app = sub_app("users", "Manage users: create, list, disable, reset a password, delete.")
tokens_app = sub_app("tokens", "Manage API tokens: create, list, revoke.")


Username = Annotated[str, typer.Argument(metavar="USERNAME", help="the user's login name")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="read the password from stdin (one line), not a prompt"),
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("no terminal to ask for a password on; use --password-stdin")
    from infrawatch.accounts.schemas import PASSWORD_MIN_LENGTH

    print(
        f"The password needs at least {PASSWORD_MIN_LENGTH} characters "
        "(a few words are easiest to remember).",
        file=sys.stderr,
    )
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        fail("the two passwords differ")
    return password


@users_app.command("create")
def users_create(
    username: Username,
    role: Annotated[
        Literal["viewer", "operator", "admin"],
        typer.Option(
            help="what the user may do: viewer (read), operator (change), admin (everything)",
        ),
    ],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (asks for the password)."""
    from infrawatch.accounts import service as accounts
    from infrawatch.accounts.schemas import UserCreate
    from infrawatch.core.context import cli_context

    password = _read_password(password_stdin)
    try:
        data = UserCreate(username=username, role=role, password=password)
    except ValueError as exc:
        fail_invalid(exc)

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.unit_of_work() as session:
            return await accounts.create_user(session, cli_context(), data)

    user = run(work)
    print_out(f"created user {user.username} with the {user.role.value} role ({user.id})")


@users_app.command("list")
def users_list() -> None:
    """List users: role, whether active, last login."""
    from rich.console import Console
    from rich.table import Table

    from infrawatch.accounts import service as accounts

    async def work(runtime: Runtime) -> list[Any]:
        async with runtime.db.unit_of_work(write=False) as session:
            return await accounts.list_users(session)

    table = Table("username", "role", "active", "last login", box=None)
    for user in run(work):
        last = user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
        table.add_row(user.username, user.role.value, "yes" if user.is_active else "no", last)
    Console().print(table)


@users_app.command("unlock")
def users_unlock(username: Username) -> None:
    """Forget a user's recent failed logins, lifting any login rate limit on them."""
    from infrawatch.accounts import service as accounts
    from infrawatch.core.context import cli_context

    async def work(runtime: Runtime) -> int:
        async with runtime.db.unit_of_work() as session:
            return await accounts.unlock_user(session, cli_context(), username)

    print_out(f"unlocked {username} ({run(work)} failed logins forgotten)")


@users_app.command("reset-2fa")
def users_reset_two_factor(username: Username) -> None:
    """Turn a user's two-factor login off (a lost phone and recovery codes):
    their password alone logs them in next time, and they enrol again where
    their role requires it."""
    from infrawatch.accounts import service as accounts
    from infrawatch.accounts import two_factor
    from infrawatch.core.context import cli_context

    async def work(runtime: Runtime) -> None:
        async with runtime.db.unit_of_work() as session:
            user = await accounts.user_named(session, username)
            await two_factor.reset(session, cli_context(), user.id)

    run(work)
    print_out(f"two-factor reset for {username}")


@users_app.command("reset-password")
def users_reset_password(username: Username, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (and unlock): for a user who forgot theirs, or an
    admin locked out."""
    from infrawatch.accounts import service as accounts
    from infrawatch.accounts.schemas import UserUpdate
    from infrawatch.core.context import cli_context

    password = _read_password(password_stdin)
    try:
        data = UserUpdate(password=password)
    except ValueError as exc:
        fail_invalid(exc)

    async def work(runtime: Runtime) -> None:
        async with runtime.db.unit_of_work() as session:
            user = await accounts.user_named(session, username)
            await accounts.update_user(session, cli_context(), user.id, data)
            await accounts.unlock_user(session, cli_context(), username)

    run(work)
    print_out(f"password of {username} reset")


@users_app.command("disable")
def users_disable(
    username: Username,
    enable: Annotated[bool, typer.Option("--enable", help="enable the user again")] = False,
) -> None:
    """Disable a user: their sessions and tokens stop working at once."""
    from infrawatch.accounts import service as accounts
    from infrawatch.accounts.schemas import UserUpdate
    from infrawatch.core.context import cli_context

    async def work(runtime: Runtime) -> None:
        async with runtime.db.unit_of_work() as session:
            user = await accounts.user_named(session, username)
            await accounts.update_user(
                session, cli_context(), user.id, UserUpdate(is_active=enable)
            )

    run(work)
    print_out(f"{username} {'enabled' if enable else 'disabled'}")


@users_app.command("delete")
def users_delete(
    username: Username,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask to confirm")] = False,
) -> None:
    """Delete a user and their tokens (the audit trail keeps what they did).
    The last admin cannot be deleted."""
    from infrawatch.accounts import service as accounts
    from infrawatch.core.context import cli_context

    if not yes:
        if not sys.stdin.isatty():
            fail("no terminal to confirm on; add --yes")
        typer.confirm(f"Delete user {username}?", abort=True)

    async def work(runtime: Runtime) -> None:
        async with runtime.db.unit_of_work() as session:
            user = await accounts.user_named(session, username)
            await accounts.delete_user(session, cli_context(), user.id)

    run(work)
    print_out(f"deleted user {username}")


@tokens_app.command("create")
def tokens_create(
    username: Username,
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    read_only: Annotated[
        bool, typer.Option("--read-only", help="the token may not change anything")
    ] = False,
    expires_in_days: Annotated[
        int | None, typer.Option(metavar="DAYS", help="expire after this many days")
    ] = None,
) -> None:
    """Create an API token; the token is printed alone on the last line."""
    from infrawatch.accounts import service as accounts
    from infrawatch.accounts.schemas import TokenCreate
    from infrawatch.core.context import cli_context

    try:
        data = TokenCreate(
            username=username, name=name, read_only=read_only, expires_in_days=expires_in_days
        )
    except ValueError as exc:
        fail_invalid(exc)

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.unit_of_work() as session:
            return await accounts.create_token(session, cli_context(), data)

    token = run(work)
    access = "read-only" if token.read_only else "read-write"
    print_out(f"{access} token {token.name!r} for {token.username}; shown once:")
    print_out(token.token)


@tokens_app.command("list")
def tokens_list(
    all_tokens: Annotated[
        bool, typer.Option("--all", help="revoked and expired tokens too")
    ] = False,
) -> None:
    """List API tokens: whose, what for, how they start, when last used."""
    from rich.console import Console
    from rich.table import Table

    from infrawatch.accounts import service as accounts
    from infrawatch.core.clock import as_utc, utcnow

    async def work(runtime: Runtime) -> list[Any]:
        async with runtime.db.unit_of_work(write=False) as session:
            return await accounts.list_tokens(session)

    now = utcnow()
    table = Table("id", "user", "name", "starts", "access", "last used", "state", box=None)
    for token in run(work):
        if token.revoked_at is not None:
            state = "revoked"
        elif token.expires_at is not None and as_utc(token.expires_at) <= now:
            state = "expired"
        else:
            state = "active"
        if state != "active" and not all_tokens:
            continue
        used = token.last_used_at.isoformat(timespec="seconds") if token.last_used_at else "never"
        access = "read-only" if token.read_only else "read-write"
        table.add_row(
            str(token.id), token.username, token.name, token.prefix + "…", access, used, state
        )
    Console().print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token: Annotated[
        str, typer.Argument(metavar="TOKEN", help="the token's id, or how it starts (tokens list)")
    ],
) -> None:
    """Revoke an API token: it stops working at once."""
    import uuid

    from infrawatch.accounts import service as accounts
    from infrawatch.core.context import cli_context
    from infrawatch.core.errors import NotFound

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.unit_of_work() as session:
            try:
                token_id = uuid.UUID(token)
            except ValueError:
                prefix = token.rstrip("…")
                found = [t for t in await accounts.list_tokens(session) if t.prefix == prefix]
                if len(found) != 1:
                    raise NotFound(
                        f"no token starts with {prefix!r}"
                        if not found
                        else f"{len(found)} tokens start with {prefix!r}: give its id"
                    ) from None
                token_id = found[0].id
            return await accounts.revoke_token(session, cli_context(), token_id)

    revoked = run(work)
    print_out(f"revoked token {revoked.name!r} of {revoked.username}")
