"""Property-based fuzzing of the analysis and OGC operations from the OpenAPI schema (schemathesis):
whatever the inputs, valid or not, the live service answers without a server error (5xx).

The schema is the app's own OpenAPI document (built without a database); each operation is
one test whose cases hypothesis draws from schemathesis's positive and negative strategies
and sends to the live server.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from gis_service import create_app
from gis_service.settings import Settings

FUZZED_PATHS = r"^/(ogc|api/(zone-check|chiefs|rivers|stations|search))"
EXAMPLES_PER_OPERATION = 25

SCHEMA = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).include(path_regex=FUZZED_PATHS)
OPERATIONS = {f"{op.method.upper()} {op.path}": op for op in (result.ok() for result in SCHEMA.get_all_operations())}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_server_errors(live_server: str, label: str) -> None:
    operation = OPERATIONS[label]
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
        case.call_and_validate(base_url=live_server, checks=[not_a_server_error], timeout=30)

    fuzz()


def test_every_analysis_operation_is_fuzzed() -> None:
    paths = {label.split(" ", 1)[1] for label in OPERATIONS}
    assert {"/api/zone-check", "/api/chiefs/{chief_id}", "/api/search", "/ogc/collections/{layer}/items"} <= paths
