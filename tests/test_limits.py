"""Per-client rate limits (gis_service/access/limits.py): 429 with an honoured Retry-After, higher
budgets for signed-in callers, one client's budget independent of the others'."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gis_service import create_app
from gis_service.settings import LimitsSettings
from tests.conftest import make_settings
from tests.test_access import access_settings, add_user, bearer, sign_in

SITE = {"type": "Point", "coordinates": [118.10, 24.48]}


@pytest.fixture()
def limited(database_url: str) -> Iterator[Callable[..., TestClient]]:
    """Start an app (lifespan running) with the given limits."""
    started: list[TestClient] = []

    def start(**limits: Any) -> TestClient:
        settings = make_settings(database_url, access=access_settings(), limits=LimitsSettings(**limits))
        client = TestClient(create_app(settings))
        client.__enter__()
        started.append(client)
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)


def spend(client: TestClient, headers: dict[str, str] | None = None, limit: int = 100) -> int:
    """Search until refused; the number of searches answered before the 429."""
    for answered in range(limit):
        response = client.get("/api/search", params={"q": "筼筜"}, headers=headers or {})
        if response.status_code == 429:
            return answered
        assert response.status_code == 200, response.text
    raise AssertionError(f"no 429 after {limit} searches")


def test_over_budget_answers_429_with_a_retry_after_that_is_honoured(limited) -> None:
    client = limited(search=3, window_s=6)  # a token every 2 s
    assert spend(client) == 3
    refused = client.get("/api/search", params={"q": "筼筜"})
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    assert "too many searches" in refused.json()["detail"]
    assert f"try again in {retry_after} s" in refused.json()["detail"]
    announced = time.monotonic() + retry_after
    while time.monotonic() < announced:  # refused requests take no token: polling does not delay it
        time.sleep(0.1)
    deadline = announced + 2
    while (response := client.get("/api/search", params={"q": "筼筜"})).status_code == 429:
        assert time.monotonic() < deadline, "no token after the announced Retry-After"
        time.sleep(0.05)
    assert response.status_code == 200, response.text


def test_signed_in_callers_have_a_higher_budget_and_other_clients_are_unaffected(limited, database_url) -> None:
    client = limited(search=2, window_s=600, signed_in_factor=3)
    login, password = add_user(database_url, "planner")
    token = sign_in(client, login, password)["access_token"]
    assert spend(client) == 2  # anonymous, from the test client's address
    assert spend(client, bearer(token)) == 6  # the planner: 3 × the budget, their own bucket
    other_address = TestClient(client.app, client=("10.1.2.3", 40000))
    assert spend(other_address) == 2  # another address: a budget of its own
    assert client.get("/api/search", params={"q": "x"}).status_code == 429  # the first is still refused
    assert client.get("/api/layers").status_code == 200  # unlimited endpoints stay open


def test_every_expensive_endpoint_is_limited(limited) -> None:
    client = limited(zone_check=1, report=1, export=1, window_s=600)
    calls = {
        "zone check": lambda: client.post("/api/zone-check", json=SITE),
        "report": lambda: client.post("/api/zone-check/report", json=SITE),
        "export": lambda: client.get("/api/layers/redline/export", params={"format": "geojson"}),
    }
    for name, call in calls.items():
        first = call()
        assert first.status_code == 200, (name, first.text)
        second = call()
        assert second.status_code == 429, (name, second.text)
        assert second.headers["content-type"].startswith("application/json")
        assert int(second.headers["Retry-After"]) >= 1 and "try again in" in second.json()["detail"]
    # an upload is a zone check: it spends the same budget
    upload = client.post("/api/zone-check", files={"file": ("site.geojson", b'{"type":"Point"}')})
    assert upload.status_code == 429


def test_limits_can_be_disabled(limited) -> None:
    client = limited(search=1, enabled=False)
    assert all(client.get("/api/search", params={"q": "a"}).status_code == 200 for _ in range(5))


def test_the_openapi_document_declares_429_on_limited_operations(limited) -> None:
    paths = limited().get("/openapi.json").json()["paths"]
    for path, method in [
        ("/api/zone-check", "post"),
        ("/api/zone-check/report", "post"),
        ("/api/layers/{layer}/export", "get"),
        ("/api/search", "get"),
    ]:
        response = paths[path][method]["responses"]["429"]
        assert "Retry-After" in response["headers"], path
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "429" not in paths["/api/layers"]["get"]["responses"]
