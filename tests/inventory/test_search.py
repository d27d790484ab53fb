from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infrawatch.inventory import search
from tests.conftest import Clients
from tests.inventory.helpers import create_server, names


def test_the_parser_reads_every_kind_of_term() -> None:
    terms = search.parse(
        "web-* lifecycle:active health:!healthy tag:env=prod tag:role region:eu-* "
        'group:edge created:>2026-01-01 ssh_port:>=2200 "free text" !ip:198.51.* env:prod'
    )
    assert terms == [
        search.FreeText("web-*", glob_names=True),
        search.TextMatch("lifecycle", "active"),
        search.TextMatch("health", "healthy", negated=True),
        search.TagMatch("env", "prod"),
        search.TagMatch("role", None),
        search.TextMatch("region", "eu-*"),
        search.GroupMatch("edge"),
        search.Comparison("created_at", ">=", datetime(2026, 1, 2, tzinfo=UTC)),
        search.Comparison("ssh_port", ">=", 2200),
        search.FreeText("free text", glob_names=False),
        search.TextMatch("ip_address", "198.51.*", negated=True),
        search.TextMatch("environment", "prod"),
    ]


def test_a_bare_date_means_the_whole_day() -> None:
    (term,) = search.parse("created:2026-03-04")
    assert term == search.Comparison(
        "created_at", ">=", datetime(2026, 3, 4, tzinfo=UTC), upper=datetime(2026, 3, 5, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("query", "position", "reason"),
    [
        ("web colour:red", 4, "unknown field 'colour'"),
        ('name:"unterminated', 5, "unterminated quote"),
        ("lifecycle:alive", 10, "lifecycle must be one of"),
        ("created:>yesterday", 8, "expected a date"),
        ("ssh_port:abc", 9, "expected a number"),
        ("region:", 7, "needs a value"),
        ("! web", 0, "'!' must be followed by a term"),
        ("id:123", 3, "is not a UUID"),
    ],
)
def test_bad_queries_say_where_and_why(query: str, position: int, reason: str) -> None:
    with pytest.raises(search.SearchError) as caught:
        search.parse(query)
    assert caught.value.position == position
    assert reason in caught.value.reason


@pytest.fixture
async def fleet(api: Clients) -> None:
    await api.operator.post("/api/v1/groups", json={"name": "edge"})
    await create_server(
        api.operator,
        "web-01",
        region="eu-west",
        tags={"env": "prod", "role": "web"},
        groups=["edge"],
        description="Frontend behind the CDN",
    )
    await create_server(
        api.operator,
        "web-02",
        region="eu-east",
        tags={"env": "staging"},
        hostname="web-02.example.test",
        ssh_port=2222,
    )
    await create_server(
        api.operator,
        "db-01",
        region="us-east",
        tags={"env": "prod", "role": "db"},
        ip_address="198.51.100.5",
        lifecycle="maintenance",
    )
    await create_server(api.operator, "cache-01", tags={"role": "cache"})


@pytest.mark.usefixtures("fleet")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("web-*", ["web-01", "web-02"]),
        ("WEB-*", ["web-01", "web-02"]),
        ("lifecycle:active", ["cache-01", "web-01", "web-02"]),
        ("lifecycle:!active", ["db-01"]),
        ("health:!healthy", ["cache-01", "db-01", "web-01", "web-02"]),
        ("tag:env=prod", ["db-01", "web-01"]),
        ("tag:role", ["cache-01", "db-01", "web-01"]),
        ("!tag:role", ["web-02"]),
        ("tag:env=stag*", ["web-02"]),
        ("region:eu-*", ["web-01", "web-02"]),
        ("region:!eu-*", ["cache-01", "db-01"]),  # a server with no region is "not eu-*"
        ("group:edge", ["web-01"]),
        ("group:!edge", ["cache-01", "db-01", "web-02"]),
        ("ssh_port:>22", ["web-02"]),
        ('"behind the cdn"', ["web-01"]),
        ('"example.test"', ["web-02"]),
        ("198.51.100", ["db-01"]),
        ("ip:198.51.*", ["db-01"]),
        ("web-* tag:env=prod region:eu-*", ["web-01"]),
        ("created:>2020-01-01 tag:role=db", ["db-01"]),
        ("created:<2020-01-01", []),
        ("100%", []),
    ],
)
async def test_the_search_language_finds_the_right_servers(
    api: Clients, query: str, expected: list[str]
) -> None:
    assert sorted(await names(api.viewer, q=query)) == expected


@pytest.mark.usefixtures("fleet")
async def test_query_string_filters_match_like_the_search_language(api: Clients) -> None:
    assert sorted(await names(api.viewer, region="eu-*")) == ["web-01", "web-02"]
    assert await names(api.viewer, tag="env=prod", lifecycle="maintenance") == ["db-01"]
    assert await names(api.viewer, group="edge") == ["web-01"]
    assert await names(api.viewer, ssh_port=2222) == ["web-02"]
    assert await names(api.viewer, description="*CDN") == ["web-01"]
    bad = await api.viewer.get("/api/v1/servers", params={"tag": "bad key!"})
    assert bad.status_code == 422


async def test_a_bad_query_is_a_422_naming_q_and_the_position(api: Clients) -> None:
    response = await api.viewer.get("/api/v1/servers", params={"q": "web colour:red"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "q"]
    assert error["ctx"]["position"] == 4
    assert "unknown field 'colour'" in error["msg"]


async def test_name_globs_and_order_ignore_case(api: Clients) -> None:
    for name in ("web-02", "WEB-03", "Web-01", "webby", "wea", "db-1"):
        await create_server(api.operator, name)
    assert await names(api.viewer, q="web-*") == ["Web-01", "web-02", "WEB-03"]
    assert await names(api.viewer, q="name:WE*") == ["wea", "Web-01", "web-02", "WEB-03", "webby"]
    assert await names(api.viewer, q="!web*") == ["db-1", "wea"]
    page = (await api.viewer.get("/api/v1/servers", params={"limit": 2, "q": "we*"})).json()
    rest = (
        await api.viewer.get(
            "/api/v1/servers", params={"limit": 10, "q": "we*", "cursor": page["next_cursor"]}
        )
    ).json()
    assert [s["name"] for s in page["items"] + rest["items"]] == [
        "wea",
        "Web-01",
        "web-02",
        "WEB-03",
        "webby",
    ]
