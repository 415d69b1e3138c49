"""A service process killed (SIGKILL) in the middle of an enrollment request never leaves a partial
writer: the store's kill harness (tests/store/test_kill.py), driven through the HTTP endpoint."""

from __future__ import annotations

import random
from pathlib import Path

from inkproof.store import open_database
from tests.store.test_kill import kill_during

REFERENCES = 20

# Enrolls writers K<run>_0, K<run>_1, ... over POST /writers/{id}/references until it is killed;
# after each flush it says how many references were written and dawdles, so that kills land inside
# the request's transaction as well as elsewhere.
SERVICE_ENROLLER = """
import io, sys, time
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import event
from sqlalchemy.orm import Session
from inkproof.imaging import load_image
from inkproof.service.app import ServiceSettings, create_app
from inkproof.store import SignatureStore, open_database
from inkproof.store.schema import Reference
from inkproof.verifier import Verifier

database, model, run, references, *paths = sys.argv[1:]
store = SignatureStore(open_database(database), Verifier(model, device="cpu", threads=1))
key = store.create_api_key(f"kill-{run}")


def after_flush(session, context):
    written = sum(isinstance(item, Reference) for item in session.new)
    print("flushed", written, flush=True)
    time.sleep(0.3 if written else 0.05)


event.listen(Session, "after_flush", after_flush)
base = [load_image(path) for path in paths]
files = []
for i in range(int(references)):
    image = base[i % len(base)].copy()
    image[0, 0] = 200 + i  # every copy has its own sha256
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    files.append(("files", (f"{i}.png", buffer.getvalue(), "image/png")))
settings = ServiceSettings(model=model, max_files=int(references), document_processes=False)
client = TestClient(create_app(settings, store=store))
client.headers["X-API-Key"] = key
print("started", flush=True)
for k in range(1000):
    name = f"K{run}_{k}"
    response = client.post(f"/api/v1/writers/{name}/references", files=files)
    assert response.status_code == 200, response.text
    print("committed", name, flush=True)
"""


def test_killed_service_enrollments_leave_no_partial_writer(
    service_model: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    database = tmp_path / "kill.db"
    open_database(database).dispose()
    images = [str(p) for p in sorted((synthetic_root / "W001" / "genuine").glob("*.png"))]
    rng = random.Random(20261203)
    committed: set[str] = set()
    for run in range(3):
        args = [str(database), str(service_model), str(run), str(REFERENCES), *images]
        pause = 0.0 if run == 0 else rng.uniform(0.5, 3.0)
        committed |= kill_during(SERVICE_ENROLLER, args, inside=REFERENCES if run == 0 else None, pause=pause)
        if run == 0:
            assert not committed  # killed inside the first request's transaction
        with open_database(database) as db, db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            counts: dict[str, int] = dict(
                connection.exec_driver_sql(
                    "SELECT w.external_id, count(r.id) FROM writers w "
                    "LEFT JOIN signature_references r ON r.writer_id = w.id GROUP BY w.external_id"
                ).all()
            )
        assert all(count == REFERENCES for count in counts.values()), counts
        assert committed <= set(counts)
        assert len(set(counts) - committed) <= 1
        if run == 0:
            assert "K0_0" not in counts
