"""`infrawatch serve` and `infrawatch worker`: the long-running processes."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from infrawatch.cli.common import app, err, fail, load_settings

if TYPE_CHECKING:
    from infrawatch.core.config import Settings
    from infrawatch.core.runtime import Runtime


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="address to listen on")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Run InfraWatch in one process: the console, the API, checks, alerting
    and jobs; on SQLite in ./infrawatch-data unless told otherwise. Creates
    the data directory on first start."""
    from infrawatch.cli.ports import bind_problem

    problem = bind_problem(host, port)
    if problem is not None:
        fail(f"{problem}; choose another with --port", code=2)
    import uvicorn

    from infrawatch.app import create_app
    from infrawatch.cli.common import run
    from infrawatch.core.logs import logging_config

    settings = load_settings(host=host, port=port)
    user_count = run(_check_and_count_users, settings=settings, create=True)
    web_app = create_app(settings)
    runtime: Runtime = web_app.state.runtime
    data_dir = runtime.settings.data_dir.resolve()
    where = f"SQLite in {data_dir}" if runtime.settings.is_sqlite else "PostgreSQL"
    err().print(f"InfraWatch {web_app.version} on {where}", highlight=False)
    err().print(
        f"Listening on [bold]http://{host}:{port}[/bold]  (console at /, API at /docs)",
        highlight=False,
    )
    if user_count == 0:
        database = "" if runtime.settings.is_sqlite else "INFRAWATCH_DATABASE_URL=… "
        err().print(
            "No users yet. Create the first admin (in another shell, from any directory):\n"
            f"  {database}INFRAWATCH_DATA_DIR={shlex.quote(str(data_dir))} "
            "infrawatch users create admin --role admin",
            highlight=False,
            soft_wrap=True,
        )
    uvicorn.run(
        web_app,
        host=host,
        port=port,
        log_config=logging_config(settings.log_level),
        proxy_headers=False,
    )


async def _check_and_count_users(runtime: Runtime) -> int:
    from infrawatch.accounts import service as accounts
    from infrawatch.core.keys import check_keyring

    await check_keyring(runtime.db, runtime.keyring)
    async with runtime.db.unit_of_work(write=False) as session:
        return await accounts.count_users(session)


@app.command()
def worker(
    location: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="where this worker checks from: it checks the monitors that list this "
            "location, and its share of those that may run anywhere",
        ),
    ] = "default",
    metrics_port: Annotated[
        int | None, typer.Option(metavar="PORT", help="serve this process's /metrics on this port")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(metavar="ADDRESS", help="address for --metrics-port")
    ] = "127.0.0.1",
) -> None:
    """Run the monitoring engine, alerting and the job worker without the web
    API. Any number of workers share monitors (shard leases) and jobs."""
    import logging.config

    from infrawatch.core.logs import logging_config
    from infrawatch.monitoring.quorum import location_problem

    problem = location_problem(location)
    if problem is not None:
        fail(f"--location: {problem}", code=2)
    if metrics_port is not None:
        from infrawatch.cli.ports import bind_problem

        taken = bind_problem(metrics_host, metrics_port)
        if taken is not None:
            fail(f"--metrics-port: {taken}", code=2)
    settings = load_settings(engine_enabled=True, engine_location=location)
    logging.config.dictConfig(logging_config(settings.log_level))
    with asyncio.Runner(loop_factory=_fastest_loop()) as runner:
        runner.run(_work(settings, metrics_port, metrics_host))


def _fastest_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed (uvicorn[standard] brings it, and `serve` runs
    on it already): a quarter more requests per core for the checks."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _work(settings: Settings, metrics_port: int | None, metrics_host: str) -> None:
    import signal

    from aiohttp import web

    from infrawatch import migrations
    from infrawatch.api.metrics import render_metrics
    from infrawatch.app import build_runtime, start_background_work
    from infrawatch.core.keys import KeyringMismatch, check_keyring

    runtime = build_runtime(settings)
    await migrations.upgrade(runtime.db.engine)
    try:
        await check_keyring(runtime.db, runtime.keyring)
    except KeyringMismatch as exc:
        err().print(f"[red]error:[/red] {exc}")
        await runtime.db.dispose()
        raise SystemExit(1) from None
    await runtime.bus.start()
    background = start_background_work(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = None
    if metrics_port is not None:

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=await render_metrics(runtime, fleet=False),
                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
            )

        metrics_app = web.Application()
        metrics_app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(metrics_app)
        await runner.setup()
        await web.TCPSite(runner, metrics_host, metrics_port).start()
    err().print(f"InfraWatch worker at {settings.engine_location!r}: checks, alerting and jobs")
    try:
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        await runtime.bus.stop()
        await runtime.db.dispose()
