"""Fixtures of the batch tests: one local Ray session per module, and the store tests' throw-away
PostgreSQL server (for claims batches against a PostgreSQL store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.conftest import postgres_server, postgres_url  # noqa: F401 (fixtures used by name)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray session with 2 CPUs for the whole module (starting Ray takes seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
