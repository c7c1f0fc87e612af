"""Property-based fuzzing of every operation of the OpenAPI document (schemathesis): whatever the
inputs, valid or not, the live service answers without a server error, with a status the
document declares for the operation, in a declared media type, with a body and headers that
match the declared schemas.

The schema is the app's own OpenAPI document (built without a database); each operation is
one test whose cases hypothesis draws from schemathesis's positive and negative strategies
and sends to the live server. The number of examples is bounded so that the whole file runs in
about two minutes; ``derandomize`` makes each run draw the same cases.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gis_service import create_app
from gis_service.settings import Settings

EXAMPLES_PER_OPERATION = 30
# Drawing tiles at every random address costs rendering time and says little more than a few do.
EXAMPLES_PER_TILE_OPERATION = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

SCHEMA = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
OPERATIONS = {f"{op.method.upper()} {op.path}": op for op in (result.ok() for result in SCHEMA.get_all_operations())}


def _examples(label: str) -> int:
    return (
        EXAMPLES_PER_TILE_OPERATION
        if label.endswith((".pbf", "{tileCol}", ".{image_format}"))
        else EXAMPLES_PER_OPERATION
    )


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_operation_conforms_to_the_openapi_document(live_server: str, label: str) -> None:
    operation = OPERATIONS[label]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=_examples(label),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=live_server, checks=CHECKS, timeout=30)

    fuzz()


def test_every_operation_is_fuzzed() -> None:
    paths = {label.split(" ", 1)[1] for label in OPERATIONS}
    assert {"/api/zone-check", "/api/chiefs/{chief_id}", "/api/search", "/ogc/collections/{layer}/items"} <= paths
    assert {"/ogc/collections/redline/items", "/tiles/{layers}/{z}/{x}/{y}.pbf", "/healthz", "/api/layers"} <= paths
    assert len(OPERATIONS) == sum(len(item) for item in SCHEMA.raw_schema["paths"].values())
