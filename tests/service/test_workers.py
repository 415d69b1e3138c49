"""``inkproof serve --workers N``: each uvicorn worker process rebuilds the app from settings
passed through the environment, so they must survive the round trip unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inkproof.service import app as service_app
from inkproof.service.app import SETTINGS_ENV, ServiceSettings, settings_to_environment


def test_settings_survive_the_trip_to_worker_processes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = ServiceSettings(
        model=tmp_path / "model.json",
        database=str(tmp_path / "store.db"),
        require_api_key=False,
        index_dir=str(tmp_path / "indexes"),
        work_threads=3,
        review_image_retention_days=None,
    )
    payload = settings_to_environment(settings)
    json.loads(payload)  # plain JSON: no pickled objects cross the process boundary
    seen: list[ServiceSettings] = []
    monkeypatch.setenv(SETTINGS_ENV, payload)
    monkeypatch.setattr(service_app, "create_app", lambda given: seen.append(given) or "app")
    assert service_app.app_from_environment() == "app"
    assert seen == [settings]


def test_document_workers_open_the_apps_saved_index(service_model: Path, tmp_path: Path) -> None:
    from inkproof.store import SignatureStore, open_database
    from inkproof.verifier import Verifier

    verifier = Verifier(service_model, device="cpu")
    store = SignatureStore(open_database(tmp_path / "store.db"), verifier, index_dir=tmp_path / "indexes")
    spec = service_app._worker_spec(ServiceSettings(model=service_model), store)
    # A worker rebuilds its store from the spec; it must find the index file the app saves.
    rebuilt = SignatureStore(open_database(spec.database_url, migrate=False), verifier, index_dir=spec.index_dir)
    assert rebuilt.index_path == store.index_path and str(store.index_path).startswith(str(tmp_path / "indexes"))
    rebuilt.db.dispose()
    store.db.dispose()
    verifier.close()
