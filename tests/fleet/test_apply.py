"""Config as code over the API, on both engines: a plan before anything
happens, all or nothing, one request id for every audit record, secrets
only by reference, prune, and apply(export) changing nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from infrawatch.fleet.document import json_schema
from tests.conftest import Clients

SCHEMA_FILE = Path(__file__).parents[2] / "docs/fleet.schema.json"
FLEET = """
groups:
  - name: web
    description: the web tier
servers:
  - name: web-1
    hostname: web-1.lab.invalid
    tags: {role: web, env: prod}
    groups: [web]
  - name: db-1
    hostname: db-1.lab.invalid
monitors:
  - name: web-1 http
    type: http
    target: http://127.0.0.1:9/health
    server: web-1
    interval_seconds: 60
    paused: true
channels:
  - name: ops
    url: "${secret:ops-url}"
rules:
  - name: page ops
    channels: [ops]
    monitors: [web-1 http]
    events: [down, recovered]
"""
CHANNEL_URL = "json://127.0.0.1:9/hook?token=s3cr3t-value"


async def _secret(api: Clients, value: str = CHANNEL_URL) -> None:
    created = await api.admin.post("/api/v1/secrets", json={"name": "ops-url", "value": value})
    assert created.status_code == 201, created.text


async def _apply(api: Clients, document: Any, **flags: bool) -> Any:
    return await api.admin.post("/api/v1/apply", json={"document": document, **flags})


def _plan(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [
        f"{c['action']} {c['kind']} {c['name']}" + (f" {c['fields']}" if c["fields"] else "")
        for c in response.json()["changes"]
    ]


async def test_a_dry_run_plans_everything_and_changes_nothing_then_apply_does_it(
    api: Clients,
) -> None:
    await _secret(api)
    planned = await _apply(api, FLEET, dry_run=True)
    assert _plan(planned) == [
        "create groups web",
        "create servers web-1",
        "create servers db-1",
        "create monitors web-1 http",
        "create channels ops",
        "create rules page ops",
    ]
    assert planned.json()["applied"] is False
    assert (await api.admin.get("/api/v1/servers")).json()["total"] == 0

    applied = await _apply(api, FLEET)
    assert applied.json()["applied"] is True
    servers = {s["name"]: s for s in (await api.admin.get("/api/v1/servers")).json()["items"]}
    assert servers["web-1"]["groups"] == ["web"] and servers["web-1"]["tags"]["role"] == "web"
    (monitor,) = (await api.admin.get("/api/v1/monitors")).json()["items"]
    assert monitor["server_id"] == servers["web-1"]["id"] and monitor["paused"] is True
    (rule,) = (await api.admin.get("/api/v1/alert-rules")).json()
    (channel,) = (await api.admin.get("/api/v1/notification-channels")).json()
    assert rule["channel_ids"] == [channel["id"]] and rule["monitor_ids"] == [monitor["id"]]
    # Every change of the apply is audited under its one request id.
    records = (
        await api.admin.get("/api/v1/audit", params={"request_id": applied.json()["request_id"]})
    ).json()["items"]
    assert {r["action"] for r in records} >= {
        "group.create",
        "server.create",
        "monitor.create",
        "channel.create",
        "alert_rule.create",
    }
    # The secret is nowhere in what the API said or recorded.
    said = planned.text + applied.text + json.dumps(records)
    assert "s3cr3t-value" not in said

    assert _plan(await _apply(api, FLEET)) == []  # applied twice: nothing to do


async def test_an_export_applied_changes_nothing_and_edits_show_as_updates(
    api: Clients,
) -> None:
    await _secret(api)
    _plan(await _apply(api, FLEET))
    exported = (await api.admin.get("/api/v1/apply/export")).json()
    assert "url" not in exported["channels"][0] and "s3cr3t" not in json.dumps(exported)
    assert _plan(await _apply(api, exported, prune=True)) == []

    edited = yaml.safe_load(FLEET)
    edited["servers"][0]["hostname"] = "web-1b.lab.invalid"
    edited["servers"][0]["tags"] = {"role": "web"}
    edited["rules"][0]["events"] = ["down"]
    assert _plan(await _apply(api, edited)) == [
        "update servers web-1 ['hostname', 'tags']",
        "update rules page ops ['events']",
    ]
    server = (await api.admin.get("/api/v1/servers", params={"q": "web-1"})).json()["items"][0]
    assert server["hostname"] == "web-1b.lab.invalid" and server["tags"] == {"role": "web"}
    # A new value behind the same reference is a change of the channel.
    secrets = (await api.admin.get("/api/v1/secrets")).json()
    (secret_id,) = [s["id"] for s in secrets]
    changed = await api.admin.patch(
        f"/api/v1/secrets/{secret_id}", json={"value": "json://127.0.0.1:9/other"}
    )
    assert changed.status_code == 200, changed.text
    assert _plan(await _apply(api, edited)) == ["update channels ops ['url']"]


async def test_prune_deletes_only_unnamed_objects_of_the_kinds_listed(api: Clients) -> None:
    await _secret(api)
    _plan(await _apply(api, FLEET))
    smaller = {
        "servers": [
            {
                "name": "web-1",
                "hostname": "web-1.lab.invalid",
                "tags": {"role": "web", "env": "prod"},
                "groups": ["web"],
            }
        ]
    }
    assert _plan(await _apply(api, smaller, dry_run=True)) == []  # without --prune: nothing
    assert _plan(await _apply(api, smaller, prune=True)) == ["delete servers db-1"]
    names = [s["name"] for s in (await api.admin.get("/api/v1/servers")).json()["items"]]
    assert names == ["web-1"]
    assert (await api.admin.get("/api/v1/monitors")).json()["total"] == 1  # not listed: kept


async def test_a_failing_object_leaves_nothing_of_the_apply(api: Clients) -> None:
    """The quorum is checked by the monitor service when the monitor is made,
    after the group and servers were: they go too."""
    document = yaml.safe_load(FLEET)
    del document["channels"], document["rules"]
    document["monitors"][0]["locations"] = ["eu", "us"]
    document["monitors"][0]["quorum"] = 5
    failed = await _apply(api, document)
    assert failed.status_code == 422, failed.text
    (error,) = failed.json()["detail"]
    assert error["loc"][:4] == ["body", "document", "monitors", "web-1 http"]
    assert "web-1 http" in error["msg"] and "quorum" in error["msg"]
    assert (await api.admin.get("/api/v1/servers")).json()["total"] == 0
    assert (await api.admin.get("/api/v1/groups")).json() == []


async def test_secrets_are_given_by_reference_only(api: Clients) -> None:
    inline = {"channels": [{"name": "ops", "url": CHANNEL_URL}]}
    refused = await _apply(api, inline, dry_run=True)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "document", "channels", "ops", "url"]
    assert "s3cr3t-value" not in refused.text
    from_env = {"channels": [{"name": "ops", "url": "${env:HOME}"}]}
    refused = await _apply(api, from_env, dry_run=True)
    assert refused.status_code == 422 and "${secret:" in refused.json()["detail"][0]["msg"]
    missing = {"channels": [{"name": "ops", "url": "${secret:nope}"}]}
    refused = await _apply(api, missing, dry_run=True)
    assert refused.status_code == 422 and "nope" in refused.json()["detail"][0]["msg"]
    password = {
        "monitors": [{"name": "m", "type": "http", "target": "http://u:hunter2@127.0.0.1:9/"}]
    }
    refused = await _apply(api, password, dry_run=True)
    assert refused.status_code == 422 and "hunter2" not in refused.text


async def test_bad_documents_are_refused_naming_where(api: Clients) -> None:
    cases = [
        ("servers: [\n", ["body", "document"]),
        ({"printers": []}, ["body", "document", "printers"]),
        ({"servers": [{"hostname": "x"}]}, ["body", "document", "servers", 0]),
        ({"servers": [{"name": "a"}, {"name": "a"}]}, ["body", "document", "servers", 1, "name"]),
        (
            {"servers": [{"name": "a", "ssh_port": 0}]},
            ["body", "document", "servers", "a", "ssh_port"],
        ),
        (
            {"monitors": [{"name": "m", "type": "http", "server": "ghost"}]},
            ["body", "document", "monitors", "m", "server"],
        ),
        ({"version": 2}, ["body", "document", "version"]),
        ("1: [x]\nservers: []\n", ["body", "document", "1"]),
        (
            {"monitors": [{"name": "m", "type": "http", "server_id": "0" * 32}]},
            ["body", "document", "monitors", "m", "server_id"],
        ),
    ]
    for document, loc in cases:
        refused = await _apply(api, document, dry_run=True)
        assert refused.status_code == 422, (document, refused.text)
        assert refused.json()["detail"][0]["loc"] == loc, (document, refused.json())
    monitor = {"name": "m", "type": "http", "target": "http://127.0.0.1:9/", "paused": True}
    _plan(await _apply(api, {"monitors": [monitor]}))
    retyped = await _apply(api, {"monitors": [monitor | {"type": "tcp", "target": "127.0.0.1:9"}]})
    assert retyped.status_code == 422 and "type" in retyped.json()["detail"][0]["msg"]
    viewer = await api.viewer.post("/api/v1/apply", json={"document": {}, "dry_run": True})
    assert viewer.status_code == 403


async def test_the_published_schema_is_the_servers_and_takes_the_examples(api: Clients) -> None:
    served = (await api.viewer.get("/api/v1/apply/schema")).json()
    assert served == json_schema() == json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(yaml.safe_load(FLEET), served)
    try:
        jsonschema.validate({"servers": [{"name": "a", "ssh_port": "x"}]}, served)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("the schema took a port that is not a number")


async def test_a_target_password_by_reference_is_stored_apart_and_compared(
    api: Clients,
) -> None:
    created = await api.admin.post("/api/v1/secrets", json={"name": "pw", "value": "hunter2"})
    assert created.status_code == 201
    monitor = {
        "name": "basic",
        "type": "http",
        "target": "http://mon:${secret:pw}@127.0.0.1:9/",
        "paused": True,
    }
    assert _plan(await _apply(api, {"monitors": [monitor]})) == ["create monitors basic"]
    (stored,) = (await api.admin.get("/api/v1/monitors")).json()["items"]
    assert stored["target"] == "http://mon:***@127.0.0.1:9/"
    assert _plan(await _apply(api, {"monitors": [monitor]})) == []
    exported = (await api.admin.get("/api/v1/apply/export")).json()
    assert exported["monitors"][0]["target"] == "http://mon:***@127.0.0.1:9/"
    assert _plan(await _apply(api, exported)) == []
    await api.admin.patch(f"/api/v1/secrets/{created.json()['id']}", json={"value": "other"})
    assert _plan(await _apply(api, {"monitors": [monitor]})) == ["update monitors basic ['target']"]
    assert _plan(await _apply(api, {"monitors": [monitor]})) == []


async def test_an_export_names_only_what_is_live(api: Clients) -> None:
    """A monitor whose server was deleted: the export has no name to write
    for it (no 500), and applying the export detaches it."""
    document = {
        "servers": [{"name": "gone"}],
        "monitors": [
            {
                "name": "m",
                "type": "http",
                "target": "http://127.0.0.1:9/",
                "server": "gone",
                "paused": True,
            }
        ],
    }
    _plan(await _apply(api, document))
    servers = (await api.admin.get("/api/v1/servers")).json()["items"]
    assert (await api.admin.delete(f"/api/v1/servers/{servers[0]['id']}")).status_code == 204
    exported = await api.admin.get("/api/v1/apply/export")
    assert exported.status_code == 200 and "server" not in exported.json()["monitors"][0]
    assert _plan(await _apply(api, exported.json())) == ["update monitors m ['server']"]


async def test_an_export_says_only_what_differs_from_the_defaults(api: Clients) -> None:
    document = {
        "servers": [{"name": "s", "hostname": "s.lab.invalid"}],
        "monitors": [
            {"name": "m", "type": "http", "target": "http://127.0.0.1:9/", "interval_seconds": 60}
        ],
    }
    _plan(await _apply(api, document))
    exported = (await api.admin.get("/api/v1/apply/export")).json()
    # Timeout and retry interval follow from the interval, settings are the
    # type's defaults: none of them is written out.
    assert exported["monitors"] == [
        {"name": "m", "type": "http", "target": "http://127.0.0.1:9/", "interval_seconds": 60}
    ]
    assert exported["servers"] == [{"name": "s", "hostname": "s.lab.invalid"}]
    assert _plan(await _apply(api, exported, prune=True)) == []


async def test_maintenance_windows_by_name_recurring_and_one_off(api: Clients) -> None:
    document = {
        "monitors": [
            {"name": "m", "type": "http", "target": "http://127.0.0.1:9/", "paused": True}
        ],
        "windows": [
            {
                "name": "sunday patching",
                "weekdays": ["sun"],
                "start_time": "02:00",
                "duration_minutes": 90,
                "timezone": "Europe/Berlin",
                "monitors": ["m"],
            },
            {
                "name": "move",
                "starts_at": "2030-01-01T00:00:00+00:00",
                "ends_at": "2030-01-01T06:00:00+00:00",
                "tags": {"env": "prod"},
            },
        ],
    }
    assert _plan(await _apply(api, document)) == [
        "create monitors m",
        "create windows sunday patching",
        "create windows move",
    ]
    windows = {w["name"]: w for w in (await api.admin.get("/api/v1/maintenance-windows")).json()}
    assert windows["sunday patching"]["cron"] and windows["sunday patching"]["monitor_ids"]
    # Weekdays are stored as the cron they make: the same document is no change.
    assert _plan(await _apply(api, document)) == []
    exported = (await api.admin.get("/api/v1/apply/export")).json()
    assert _plan(await _apply(api, exported, prune=True)) == []
    document["windows"][0]["duration_minutes"] = 120
    assert _plan(await _apply(api, document)) == [
        "update windows sunday patching ['duration_minutes']"
    ]


async def test_status_pages_by_slug_with_their_monitors_by_name(api: Clients) -> None:
    monitor = {"name": "web", "type": "http", "target": "http://127.0.0.1:9/", "paused": True}
    page = {
        "slug": "status",
        "title": "Example status",
        "published": True,
        "sections": [{"name": "Web", "monitors": [{"monitor": "web", "name": "Website"}]}],
    }
    document = {"monitors": [monitor], "status_pages": [page]}
    assert _plan(await _apply(api, document)) == [
        "create monitors web",
        "create status_pages status",
    ]
    (stored,) = (await api.admin.get("/api/v1/status-pages")).json()
    (monitor_out,) = (await api.admin.get("/api/v1/monitors")).json()["items"]
    assert stored["sections"][0]["monitors"][0]["monitor_id"] == monitor_out["id"]
    assert _plan(await _apply(api, document)) == []
    exported = (await api.admin.get("/api/v1/apply/export")).json()
    assert exported["status_pages"][0]["slug"] == "status"
    assert exported["status_pages"][0]["sections"][0]["monitors"][0]["monitor"] == "web"
    assert _plan(await _apply(api, exported, prune=True)) == []

    ghost = {
        "slug": "other",
        "title": "x",
        "sections": [{"name": "S", "monitors": [{"monitor": "ghost", "name": "G"}]}],
    }
    refused = await _apply(api, {"status_pages": [ghost]}, dry_run=True)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == [
        "body",
        "document",
        "status_pages",
        "other",
        "sections",
        0,
        "monitors",
        0,
        "monitor",
    ]


async def test_templates_with_the_monitors_they_stamp_out(api: Clients) -> None:
    template = {
        "name": "web node",
        "description": "a web server",
        "defaults": {"environment": "prod", "tags": {"role": "web"}},
        "monitors": [{"name": "{server} http", "type": "http", "target": "http://{hostname}:9/"}],
    }
    assert _plan(await _apply(api, {"templates": [template]})) == ["create templates web node"]
    (stored,) = (await api.admin.get("/api/v1/templates")).json()
    specs = (await api.admin.get(f"/api/v1/templates/{stored['id']}/monitors")).json()
    assert specs == template["monitors"]
    assert _plan(await _apply(api, {"templates": [template]})) == []
    exported = (await api.admin.get("/api/v1/apply/export")).json()
    assert exported["templates"][0]["monitors"] == template["monitors"]
    assert _plan(await _apply(api, exported, prune=True)) == []
    template["monitors"][0]["interval_seconds"] = 60
    assert _plan(await _apply(api, {"templates": [template]})) == [
        "update templates web node ['monitors']"
    ]
    with_password = {
        **template,
        "monitors": [{"name": "{server} x", "type": "http", "target": "http://u:pw@{hostname}/"}],
    }
    refused = await _apply(api, {"templates": [with_password]}, dry_run=True)
    assert refused.status_code == 422 and "pw@" not in refused.text
    assert refused.json()["detail"][0]["loc"] == [
        "body",
        "document",
        "templates",
        "web node",
        "monitors",
        0,
        "target",
    ]


async def test_yaml_aliases_are_refused_not_expanded(api: Clients) -> None:
    """A few hundred bytes that make a billion items for whoever walks them."""
    bomb = (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
            for i in range(8)
        )
        + "servers: [{name: s, attributes: {v: *i}}]\n"
    )
    refused = await _apply(api, bomb, dry_run=True)
    assert refused.status_code == 422 and "aliases" in refused.text


async def test_only_admins_apply_documents_that_read_stored_secrets(api: Clients) -> None:
    """An operator may create channels, but a reference to a stored secret
    would let them send it anywhere in a channel URL or a monitor target."""
    await _secret(api)
    document = {"channels": [{"name": "ops", "url": "${secret:ops-url}"}]}
    refused = await api.operator.post("/api/v1/apply", json={"document": document})
    assert refused.status_code == 403 and "s3cr3t" not in refused.text
    plain = {"servers": [{"name": "s"}]}
    allowed = await api.operator.post("/api/v1/apply", json={"document": plain})
    assert allowed.status_code == 200 and allowed.json()["applied"] is True
