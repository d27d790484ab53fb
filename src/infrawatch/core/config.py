"""The one settings object. Built by the caller (CLI, tests) and handed to
create_app(); nothing reads the environment at import time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Every secret may also come from a file named by `<VAR>_FILE`, as container
# orchestrators mount them. The file wins over nothing, but an explicit value wins over it.
SECRET_FIELDS = (
    "database_url",
    "redis_url",
    "master_key",
    "session_secret",
    "oidc_client_secret",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INFRAWATCH_", extra="ignore")

    data_dir: Path = Path("./infrawatch-data")
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    master_key: SecretStr | None = None
    session_secret: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"

    # Proxies whose X-Forwarded-For we believe when recording a source IP.
    trusted_proxies: list[str] = Field(default_factory=list)

    session_ttl_seconds: int = 12 * 3600
    # Roles whose console logins need a TOTP code ("admin,operator"): their
    # users without one get a session that may only enrol (docs/accounts.md).
    totp_required_roles: str = ""
    # Single sign-on with OpenID Connect (docs/accounts.md): on when an
    # issuer and a client id are set. Groups map to roles `group=role,…`.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile email"
    oidc_groups_claim: str = "groups"
    oidc_username_claim: str = "preferred_username"
    oidc_role_map: str = ""
    oidc_default_role: str = ""  # for users none of whose groups is mapped; empty: refused
    oidc_name: str = "single sign-on"  # what the login page's button says
    # Failed-login limits (accounts.service._check_rate_limit, docs/reliability.md).
    login_max_failures_per_user_ip: int = 5  # free tries, then doubling waits
    login_max_failures_per_ip: int = 20
    login_max_failures_per_user: int = 100  # from all addresses, before failed ones wait
    login_failure_window_seconds: int = 15 * 60

    # Upper bounds that keep one request from holding the database for long.
    # Largest request body read (bytes); server imports have their own, larger one.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    bulk_max_servers: int = 10_000
    import_max_rows: int = 50_000

    # The monitoring engine. `serve` runs one unless told not to (then only
    # `infrawatch worker` processes check).
    engine_enabled: bool = True
    engine_location: str = "default"
    engine_max_concurrency: int = 2000
    engine_per_host_concurrency: int = 100
    engine_lease_seconds: float = 30.0
    # HTTP checks leave from this local address (a probe host with several).
    probe_source_address: str | None = None
    results_retention_hours: float = 48.0
    # Alerting runs beside the engine. A down event for a server with
    # upstream dependencies waits this long, so an upstream outage detected
    # in the same moment is seen first and the downstream alerts are held.
    alerting_enabled: bool = True
    # /metrics names monitors and targets: it wants an API token unless this is on.
    metrics_public: bool = False
    # Per-monitor series (a dozen lines each) while a scrape would have at
    # most this many monitors; above it, only the per-status and per-type
    # totals: 25,000 monitors made a 40 MB scrape.
    metrics_per_monitor_limit: int = Field(default=1000, ge=0)
    alert_settle_seconds: float = 5.0
    # Durable jobs. `serve` runs a job worker unless told not to; every
    # `infrawatch worker` runs one. Leases are renewed every third of this.
    jobs_enabled: bool = True
    jobs_max_running: int = 8
    jobs_lease_seconds: float = 30.0
    # Network discovery guardrails: only ranges inside these networks, and
    # none larger than this many addresses (a /22).
    discovery_allowed_networks: list[str] = Field(
        default_factory=lambda: [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ]
    )
    discovery_max_addresses: int = 1024

    # Provisioning: ansible processes at once in one worker (each ~150 MB).
    provisioning_max_processes: int = 4
    # The lab provider: disposable hosts on this machine (needs root,
    # systemd-nspawn and debootstrap); off unless asked for.
    lab_enabled: bool = False
    lab_dir: Path | None = None  # default: <data dir>/lab
    lab_cache: Path = Path("/var/cache/infrawatch-lab")
    lab_subnet: str = "10.213.0.0/16"

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name in SECRET_FIELDS:
            if data.get(name):
                continue
            path = os.environ.get(f"INFRAWATCH_{name.upper()}_FILE") or data.get(f"{name}_file")
            if path:
                data[name] = Path(path).read_text().strip()
        return data

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'infrawatch.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None on PostgreSQL."""
        if not self.is_sqlite:
            return None
        return Path(self.effective_database_url.split(":///", 1)[1].split("?", 1)[0])
