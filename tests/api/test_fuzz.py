"""A bounded schemathesis run over the whole OpenAPI document against a real
`infrawatch serve`: zero server errors, zero responses that break their own
schema. INFRAWATCH_FUZZ_EXAMPLES raises the bound for a longer hunt."""

from __future__ import annotations

import os

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.live import admin_token, running_server

EXAMPLES = int(os.environ.get("INFRAWATCH_FUZZ_EXAMPLES", "20"))
# Generated monitors, channels and scans point anywhere: nothing may act on
# them. No engine, alerting or job worker runs, discovery may only accept
# loopback ranges, and the calls that reach out on demand are left out
# (their input checks are covered by their own tests).
REACHES_OUT = {
    ("POST", "/api/v1/monitors/{monitor_id}/check"),
    ("POST", "/api/v1/notification-channels/{channel_id}/test"),
    ("POST", "/api/v1/validate/hostname"),
    ("POST", "/api/v1/validate/tcp"),
    ("POST", "/api/v1/validate/http"),
    ("POST", "/api/v1/validate/tls"),
    # A provider account's API is asked on these (its api_url would be generated).
    ("GET", "/api/v1/provider-accounts/{account_id}/regions"),
    ("GET", "/api/v1/provider-accounts/{account_id}/sizes"),
    ("GET", "/api/v1/provider-accounts/{account_id}/nodes"),
}


@pytest.mark.fuzz
def test_the_api_survives_generated_input(cli_env: dict[str, str]) -> None:
    env = {
        **cli_env,
        "INFRAWATCH_ENGINE_ENABLED": "false",
        "INFRAWATCH_ALERTING_ENABLED": "false",
        "INFRAWATCH_JOBS_ENABLED": "false",
        "INFRAWATCH_DISCOVERY_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    }
    token = admin_token(env)
    headers = {"Authorization": f"Bearer {token}"}
    with running_server(env) as (base, _output):
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        failures: list[str] = []
        operations = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            if (operation.method.upper(), operation.path) in REACHES_OUT:
                continue
            for mode in (
                schemathesis.GenerationMode.POSITIVE,
                schemathesis.GenerationMode.NEGATIVE,
            ):

                @hypothesis.settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(hypothesis.HealthCheck),
                )
                @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
                def exercise(case: schemathesis.Case) -> None:
                    case.call_and_validate(
                        base_url=base,
                        headers=headers,
                        checks=[
                            not_a_server_error,
                            response_schema_conformance,
                            # Every status a route answers is in the document.
                            status_code_conformance,
                        ],
                    )

                try:
                    exercise()
                except hypothesis.errors.Unsatisfiable:
                    continue  # an operation with no inputs has no invalid inputs either
                except Exception as exc:  # collect every operation's failure, then report all
                    where = f"{operation.method.upper()} {operation.path} ({mode.value})"
                    failures.append(f"{where}: {str(exc)[:1500]}")
        assert operations > 30
    if failures:
        # The server's own account of each 500 is the useful half of a report.
        tracebacks = [line for line in _output if not line.startswith("INFO")]
        failures.append("server output:\n" + "\n".join(tracebacks[-200:]))
    assert not failures, "\n\n".join(failures)
