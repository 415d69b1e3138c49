"""A service process killed (SIGKILL) in the middle of an enrollment request never leaves a partial
writer: the store's kill harness (tests/store/test_kill.py), driven through the HTTP endpoint."""

from __future__ import annotations

from pathlib import Path

from inkproof.store import open_database
from tests.store.test_kill import killed_enrollments_leave_whole_writers

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
    killed_enrollments_leave_whole_writers(
        SERVICE_ENROLLER, service_model, database, images, references=REFERENCES, seed=20261203, pauses=(0.5, 3.0)
    )
