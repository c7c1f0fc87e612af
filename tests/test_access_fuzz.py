"""Property-based fuzzing of the access routes (schemathesis, as tests/test_fuzz_openapi.py does
for the analysis routes): anonymous and as an admin, whatever the inputs, no server error."""

from __future__ import annotations

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from gis_service import create_app
from gis_service.access import admin
from gis_service.access.audit import AuditContext
from gis_service.settings import Settings
from tests.conftest import run_async

ACCESS_PATHS = r"^/api/(auth|admin|audit)"
EXAMPLES_PER_OPERATION = 25
SCHEMA = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).include(path_regex=ACCESS_PATHS)
OPERATIONS = {f"{op.method.upper()} {op.path}": op for op in (result.ok() for result in SCHEMA.get_all_operations())}


@pytest.fixture(scope="module")
def admin_token(live_server: str, database_url: str) -> str:
    """A bearer token of an admin of the live server (so the admin routes' inputs are reached)."""
    import httpx

    password = "fuzzing-admin-password"

    async def create() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await admin.add_user(conn, AuditContext("test-suite", "cli"), "fuzz-admin", "admin", password)

    run_async(create())
    response = httpx.post(f"{live_server}/api/auth/token", data={"username": "fuzz-admin", "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.mark.parametrize("as_admin", [False, True], ids=["anonymous", "admin"])
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_server_errors(live_server: str, admin_token: str, label: str, as_admin: bool) -> None:
    operation = OPERATIONS[label]
    headers = {"Authorization": f"Bearer {admin_token}"} if as_admin else {}
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        if as_admin and label == "POST /api/auth/logout":
            return  # would end the admin's session for the cases after it
        case.call_and_validate(base_url=live_server, headers=headers, checks=[not_a_server_error], timeout=30)

    fuzz()


def test_every_access_operation_is_fuzzed() -> None:
    assert {
        "POST /api/auth/token",
        "POST /api/auth/refresh",
        "GET /api/audit",
        "PATCH /api/admin/users/{login}",
    } <= set(OPERATIONS)
