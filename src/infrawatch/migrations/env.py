from __future__ import annotations

from alembic import context

from infrawatch.accounts import models as _accounts  # noqa: F401  (registers tables)
from infrawatch.alerting import models as _alerting  # noqa: F401
from infrawatch.audit import models as _audit  # noqa: F401
from infrawatch.core.db import Base
from infrawatch.credentials import models as _credentials  # noqa: F401
from infrawatch.discovery import models as _discovery  # noqa: F401
from infrawatch.inventory import models as _inventory  # noqa: F401
from infrawatch.jobs import models as _jobs  # noqa: F401
from infrawatch.monitoring import models as _monitoring  # noqa: F401
from infrawatch.provisioning import models as _provisioning  # noqa: F401
from infrawatch.statuspage import models as _statuspage  # noqa: F401

target_metadata = Base.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through infrawatch (`infrawatch db upgrade`), not bare alembic"
    )

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # SQLite's FTS5 tables (migration 0001) are not models: autogenerate
    # must not offer to drop them.
    include_name=lambda name, kind, _parent: (
        not (kind == "table" and str(name).startswith("servers_search"))
    ),
)
with context.begin_transaction():
    context.run_migrations()
