"""The app's own OpenAPI schema, fuzzed with schemathesis: whatever a client sends, no 5xx."""
import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency (make install)")
from schemathesis.checks import not_a_server_error  # noqa: E402


@pytest.fixture
def api_schema(client):
    """The schema of the running app (its lifespan has loaded the model, index and database)."""
    return schemathesis.openapi.from_asgi("/openapi.json", client.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_makes_the_server_fail(case):
    case.call_and_validate(checks=[not_a_server_error])
