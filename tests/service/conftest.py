"""Service fixtures: a real SQLite store with a deterministic ONNX model, an API key, a client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inkproof.service.app import ServiceSettings, create_app
from inkproof.store import SignatureStore, open_database
from inkproof.verifier import Verifier
from tests.store.conftest import pixel_model, postgres_server  # noqa: F401  (a fixture, used by name)


@pytest.fixture(scope="session")
def service_model(onnx_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-built pixel-grid ONNX model (deterministic, separates writers a little)."""
    return pixel_model(onnx_model, tmp_path_factory.mktemp("service-model"))


@pytest.fixture
def service_store(service_model: Path, tmp_path: Path) -> Iterator[SignatureStore]:
    verifier = Verifier(service_model, device="cpu", max_pixels=25_000_000)
    database = open_database(tmp_path / "service.db")
    yield SignatureStore(database, verifier)
    verifier.close()
    database.dispose()


@pytest.fixture
def api_key(service_store: SignatureStore) -> str:
    return service_store.create_api_key("tests")


@pytest.fixture
def settings(service_model: Path) -> ServiceSettings:
    return ServiceSettings(model=service_model, max_upload_bytes=2_000_000, max_files=8)


@pytest.fixture
def client(service_store: SignatureStore, settings: ServiceSettings, api_key: str) -> Iterator[TestClient]:
    app = create_app(settings, store=service_store)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.headers["X-API-Key"] = api_key
        yield test_client
