from __future__ import annotations

import csv
import io

import yaml

from tests.conftest import Clients
from tests.inventory.helpers import create_server, names

CSV = """name,hostname,ip_address,region,tags,groups,lifecycle,attributes
web-1,web-1.example.test,192.0.2.10,eu-1,env=prod;role=web,edge,active,"{""rack"": 1}"
web-2,,192.0.2.11,eu-1,env=prod,,active,
db-1,,,us-1,role=db,,planned,
"""


async def _import(api: Clients, body: str, fmt: str = "csv", dry_run: bool = False):  # type: ignore[no-untyped-def]
    return await api.operator.post(
        "/api/v1/servers/import",
        params={"format": fmt, "dry_run": str(dry_run).lower()},
        content=body.encode(),
        headers={"Content-Type": "text/csv" if fmt == "csv" else "application/yaml"},
    )


async def test_a_dry_run_reports_each_row_and_writes_nothing(api: Clients) -> None:
    await api.operator.post("/api/v1/groups", json={"name": "edge"})
    await create_server(
        api.operator, "web-2", ip_address="192.0.2.11", region="eu-1", tags={"env": "prod"}
    )
    await create_server(api.operator, "db-1", region="eu-1", lifecycle="planned")
    bad = CSV + "bad,,999.1.1.1,,,,,\n"
    report = (await _import(api, bad, dry_run=True)).json()
    assert (report["created"], report["updated"], report["unchanged"], report["errors"]) == (
        1,
        1,
        1,
        1,
    )
    rows = {r["name"]: r for r in report["rows"]}
    assert rows["web-1"]["action"] == "create"
    assert rows["web-2"]["action"] == "unchanged"
    assert rows["db-1"]["action"] == "update"
    assert rows["db-1"]["changes"] == ["region", "tags"]
    assert rows["bad"]["errors"] == ["ip_address: not a valid IPv4 or IPv6 address"]
    assert await names(api.viewer) == ["db-1", "web-2"]


async def test_a_real_import_with_a_bad_row_writes_nothing_and_names_the_row(api: Clients) -> None:
    await api.operator.post("/api/v1/groups", json={"name": "edge"})
    response = await _import(api, CSV + "web-1,,,,,,,\n")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", 4, "web-1"]
    assert "earlier row" in detail[0]["msg"]
    assert await names(api.viewer) == []


async def test_import_creates_and_updates_by_name_and_export_round_trips(api: Clients) -> None:
    await api.operator.post("/api/v1/groups", json={"name": "edge"})
    await create_server(api.operator, "db-1", lifecycle="planned")
    response = await _import(api, CSV)
    assert response.status_code == 200, response.text
    assert (response.json()["created"], response.json()["updated"]) == (2, 1)
    web1 = (await api.viewer.get("/api/v1/servers", params={"q": "web-1"})).json()["items"][0]
    assert web1["tags"] == {"env": "prod", "role": "web"}
    assert web1["groups"] == ["edge"]
    assert web1["attributes"] == {"rack": 1}

    exported = await api.viewer.get(
        "/api/v1/servers/export", params={"format": "csv", "q": "region:eu-1"}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["name"] for r in rows] == ["web-1", "web-2"]
    assert rows[0]["tags"] == "env=prod;role=web"
    again = (await _import(api, exported.text, dry_run=True)).json()
    assert again["unchanged"] == 2


async def test_yaml_import_and_export(api: Clients) -> None:
    document = {
        "servers": [
            {"name": "y1", "tags": {"env": "dev"}, "ssh_port": 2200},
            {"name": "y2", "lifecycle": "planned"},
        ]
    }
    response = await _import(api, yaml.safe_dump(document), fmt="yaml")
    assert response.status_code == 200, response.text
    exported = yaml.safe_load(
        (await api.viewer.get("/api/v1/servers/export", params={"format": "yaml"})).text
    )
    assert [(s["name"], s["ssh_port"], s["tags"]) for s in exported["servers"]] == [
        ("y1", 2200, {"env": "dev"}),
        ("y2", 22, {}),
    ]


async def test_unparseable_files_are_422(api: Clients) -> None:
    assert (await _import(api, "not,a,known\n1,2,3\n")).status_code == 422
    assert (await _import(api, "servers: [unclosed", fmt="yaml")).status_code == 422
    assert (await _import(api, "42", fmt="yaml")).status_code == 422
