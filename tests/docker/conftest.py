"""The service fixtures, shared with the container checks."""
from tests.service.conftest import service_assets  # noqa: F401  (a pytest fixture)
