"""The OpenAPI document names the errors and the authentication."""

from __future__ import annotations

from tests.conftest import Clients


async def test_the_document_lists_errors_and_the_bearer_scheme(api: Clients) -> None:
    schema = (await api.anon.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = schema["paths"]
    servers = paths["/api/v1/servers/{server_id}"]
    assert servers["get"]["security"] == [{"bearer": []}]
    assert {"401", "403", "404", "503"} <= set(servers["get"]["responses"])
    assert {"409", "412", "413"} <= set(servers["patch"]["responses"])
    login = paths["/api/v1/auth/login"]["post"]
    assert "security" not in login and {"401", "429"} <= set(login["responses"])
    push = paths["/api/v1/push/{token}"]["get"]
    assert "security" not in push and "404" in push["responses"]
    error = servers["get"]["responses"]["404"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
