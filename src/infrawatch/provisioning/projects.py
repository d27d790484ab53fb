"""Projects: users' own playbooks, from a git repository or a folder.

A sync (a job) mirrors the repository into the data dir, pins the commit
the branch points at and lists the playbooks in it. A run pins that commit
too, and the worker that runs it materialises exactly that tree (fetching
it first if its own mirror has not seen it), so a run is reproducible and
a push during a run changes nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import bump_version
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.jobs import service as jobs
from infrawatch.jobs.context import JobContext
from infrawatch.jobs.registry import JobType, PermanentError
from infrawatch.provisioning import repository
from infrawatch.provisioning.models import Project
from infrawatch.provisioning.schemas import ProjectCreate, ProjectOut

GIT_TIMEOUT = 300.0
PLAYBOOK_SUFFIXES = (".yml", ".yaml")
# Protocols git may use for a project: never ext:: (it runs commands) or fd::.
GIT_PROTOCOLS = "file:git:http:https:ssh"


class ProjectError(Exception):
    pass


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {
        **os.environ,
        "GIT_ALLOW_PROTOCOL": GIT_PROTOCOLS,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
    }
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            ["git", *args],  # noqa: S607
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise ProjectError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise ProjectError(f"git {args[0]} took longer than {GIT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        raise ProjectError(
            f"git {args[0]}: {done.stderr.strip().splitlines()[-1:] or done.returncode}"
        )
    return done.stdout


def is_folder(source: str) -> bool:
    return source.startswith("/")


def mirror_of(data_dir: Path, project_id: uuid.UUID) -> Path:
    return data_dir.resolve() / "projects" / f"{project_id}.git"


def _is_playbook(text: str) -> bool:
    try:
        plays = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return (
        isinstance(plays, list)
        and bool(plays)
        and all(isinstance(p, dict) and ("hosts" in p or "import_playbook" in p) for p in plays)
    )


def _candidates(paths: list[str]) -> list[str]:
    """Playbooks live at the top of the project or under playbooks/."""
    return sorted(
        p
        for p in paths
        if p.endswith(PLAYBOOK_SUFFIXES)
        and (p.count("/") == 0 or (p.startswith("playbooks/") and p.count("/") == 1))
    )


def sync(
    data_dir: Path, project_id: uuid.UUID, source: str, branch: str | None
) -> tuple[str | None, list[str]]:
    """-> (revision, playbooks). Blocking: run it in a thread."""
    if is_folder(source):
        root = Path(source)
        if not root.is_dir():
            raise ProjectError(f"{source} is not a folder on this machine")
        paths = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
        found = [
            p for p in _candidates(paths) if _is_playbook((root / p).read_text(errors="replace"))
        ]
        return None, found
    mirror = mirror_of(data_dir, project_id)
    if not (mirror / "HEAD").exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(mirror, ignore_errors=True)
        _git("clone", "--mirror", "--quiet", "--", source, str(mirror))
    else:
        _git("remote", "update", "--prune", cwd=mirror)
    revision = _git("rev-parse", "--verify", f"{branch or 'HEAD'}^{{commit}}", cwd=mirror).strip()
    paths = _git("ls-tree", "-r", "--name-only", revision, cwd=mirror).splitlines()
    found = [
        p for p in _candidates(paths) if _is_playbook(_git("show", f"{revision}:{p}", cwd=mirror))
    ]
    return revision, found


def materialize(
    data_dir: Path, project_id: uuid.UUID, source: str, revision: str | None, dest: Path
) -> None:
    """The project's tree at `revision` into `dest` (a folder is copied as it is now)."""
    shutil.rmtree(dest, ignore_errors=True)
    if is_folder(source):
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".git"), symlinks=True)
        return
    assert revision is not None
    mirror = mirror_of(data_dir, project_id)
    if not (mirror / "HEAD").exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--mirror", "--quiet", "--", source, str(mirror))
    try:
        _git("cat-file", "-e", f"{revision}^{{commit}}", cwd=mirror)
    except ProjectError:
        _git("remote", "update", "--prune", cwd=mirror)
    dest.mkdir(parents=True)
    archive = subprocess.run(  # noqa: S603
        ["git", "archive", "--format=tar", revision],  # noqa: S607
        cwd=mirror,
        capture_output=True,
        timeout=GIT_TIMEOUT,
        check=True,
    ).stdout
    subprocess.run(  # noqa: S603
        ["tar", "-x", "-C", str(dest)],  # noqa: S607
        input=archive,
        capture_output=True,
        timeout=GIT_TIMEOUT,
        check=True,
    )


# --- the service --------------------------------------------------------------------


def project_out(project: Project) -> ProjectOut:
    return ProjectOut.model_validate(project, from_attributes=True)


async def list_projects(session: AsyncSession) -> list[ProjectOut]:
    return [project_out(p) for p in await repository.projects(session)]


async def require_project(session: AsyncSession, project_id: uuid.UUID) -> Project:
    project = await repository.get_project(session, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project


async def create_project(
    session: AsyncSession, ctx: OperationContext, body: ProjectCreate, job_type: JobType
) -> ProjectOut:
    if await repository.project_named(session, body.name) is not None:
        raise Conflict(f"a project named {body.name!r} exists already")
    now = utcnow()
    project = Project(
        id=uuid.uuid4(),
        name=body.name,
        source=body.source,
        branch=body.branch,
        playbooks=[],
        version=1,
        created_at=now,
        updated_at=now,
    )
    await repository.add(session, project)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "provisioning.project.create",
            "provisioning_project",
            project.id,
            after={"name": project.name, "source": project.source, "branch": project.branch},
        ),
    )
    await request_sync(session, ctx, project.id, job_type)
    return project_out(project)


async def request_sync(
    session: AsyncSession, ctx: OperationContext, project_id: uuid.UUID, job_type: JobType
) -> ProjectOut:
    project = await require_project(session, project_id)
    await jobs.enqueue(
        session,
        ctx,
        job_type,
        {"project_id": str(project.id)},
        subject=("provisioning_project", str(project.id)),
    )
    return project_out(project)


async def delete_project(
    session: AsyncSession, ctx: OperationContext, project_id: uuid.UUID
) -> None:
    project = await require_project(session, project_id)
    await repository.delete_row(session, project)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "provisioning.project.delete",
            "provisioning_project",
            project_id,
            {"name": project.name},
        ),
    )


async def playbook_of(
    session: AsyncSession, project_name: str | None, playbook: str
) -> tuple[Project, str]:
    """The project and its pinned revision for a run, or a 422 naming the field."""
    if not project_name:
        raise InvalidInput("a playbook comes from a project: name it", loc=("body", "project"))
    project = await repository.project_named(session, project_name)
    if project is None:
        raise InvalidInput(f"no project named {project_name!r}", loc=("body", "project"))
    if project.synced_at is None:
        why = f" (the last sync failed: {project.sync_error})" if project.sync_error else ""
        raise InvalidInput(
            f"project {project.name!r} is not synced yet{why}", loc=("body", "project")
        )
    if playbook not in project.playbooks:
        known = ", ".join(project.playbooks) or "none"
        raise InvalidInput(
            f"{project.name!r} has no playbook {playbook!r}; it has: {known}",
            loc=("body", "playbook"),
        )
    return project, project.revision or ""


async def sync_job(ctx: JobContext) -> dict[str, Any]:
    import asyncio

    project_id = uuid.UUID(ctx.arguments["project_id"])
    async with ctx.db.unit_of_work(write=False) as session:
        project = await repository.get_project(session, project_id)
        if project is None:
            raise PermanentError("the project is gone")
        source, branch = project.source, project.branch
    await ctx.progress(10, f"syncing {source}", force=True)
    data_dir = ctx.services.settings.data_dir
    try:
        revision, playbooks = await asyncio.to_thread(sync, data_dir, project_id, source, branch)
    except ProjectError as exc:
        async with ctx.db.unit_of_work() as session:
            row = await repository.get_project(session, project_id)
            if row is not None:
                row.sync_error = str(exc)[:2000]
                row.updated_at = utcnow()
        raise PermanentError(str(exc)) from None
    async with ctx.db.unit_of_work() as session:
        row = await repository.get_project(session, project_id)
        if row is None:
            raise PermanentError("the project is gone")
        row.revision, row.playbooks = revision, playbooks
        row.sync_error = None
        bump_version(row)
        row.synced_at = row.updated_at
    return {"revision": revision, "playbooks": playbooks}


SYNC = JobType(
    name="provisioning.project_sync",
    handler=sync_job,
    max_attempts=3,
    backoff_seconds=10,
    timeout_seconds=600,
    description="mirror a project's repository and list its playbooks",
)
