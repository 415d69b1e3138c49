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
