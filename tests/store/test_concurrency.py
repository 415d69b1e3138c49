"""Many threads sharing one store: enrolling distinct writers, the same writer, and verifying."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from inkproof.store import ClaimResult, Database, EnrollResult, ReviewError, SignatureStore
from inkproof.store.schema import Reference, VerificationLog, Writer
from inkproof.verifier import Verifier

Signatures = Callable[[str, str], list[Path]]


def run_together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Start every job at the same moment, each on its own thread; re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results


def test_concurrent_enrollment_and_claims(database: Database, pixel_verifier: Verifier, signatures: Signatures) -> None:
    store = SignatureStore(database, pixel_verifier, accept_threshold=2.0, reject_threshold=-2.0)
    target = signatures("W001", "genuine")
    store.enroll("target", target[:3])
    shared = signatures("W002", "genuine")[:4]
    distinct = {f"D{i}": signatures(f"W00{i + 3}", "genuine")[:2] for i in range(4)}

    jobs: list[Callable[[], Any]] = []

    def claim_three(first: int) -> list[ClaimResult]:
        return [store.verify_claim("target", target[3 + (first + k) % 3]) for k in range(3)]

    for name, images in distinct.items():
        jobs.append(partial(store.enroll, name, images))
    for i in range(4):  # the same writer, the same images in different orders
        jobs.append(partial(store.enroll, "same", shared[i:] + shared[:i]))
    jobs += [partial(claim_three, i) for i in range(4)]
    jobs += [partial(store.create_writer, "created") for _ in range(2)]
    results = run_together(jobs)

    same = [r for r in results if isinstance(r, EnrollResult) and r.writer.external_id == "same"]
    assert sum(r.added for r in same) == 4 and sum(r.duplicates for r in same) == 12
    assert sum(r.writer_created for r in same) == 1
    claims = [claim for r in results if isinstance(r, list) for claim in r]
    assert len(claims) == 12 and len({c.log_id for c in claims}) == 12

    counts = {w.external_id: w.references for w in store.list_writers()}
    assert counts == {"D0": 2, "D1": 2, "D2": 2, "D3": 2, "created": 0, "same": 4, "target": 3}
    with database.session(write=False) as session:
        assert session.scalar(select(func.count(Writer.id))) == 7
        assert session.scalar(select(func.count(Reference.id))) == 15
        # No image twice for one writer.
        pairs = session.execute(select(Reference.writer_id, Reference.image_sha256)).all()
        assert len(set(pairs)) == len(pairs)
        logged = set(session.scalars(select(VerificationLog.id)))
    assert logged == {c.log_id for c in claims}
    assert all(store.get_log(c.log_id).status == "pending_review" for c in claims)

    # Reviewers racing on one item: exactly one wins.
    item = claims[0].log_id

    def review(reviewer: str) -> str:
        try:
            return store.review(item, "genuine", reviewer).reviewer or ""
        except ReviewError:
            return ""

    winners = [w for w in run_together([partial(review, f"r{i}") for i in range(6)]) if w]
    assert len(winners) == 1 and store.get_log(item).reviewer == winners[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_identify_while_enrolling(database: Database, pixel_verifier: Verifier, signatures: Signatures) -> None:
    store = SignatureStore(database, pixel_verifier)
    store.enroll("W001", signatures("W001", "genuine")[:3])
    query = signatures("W001", "genuine")[3]

    def identify() -> list[str]:
        return [store.identify(query, top=1).candidates[0].external_id for _ in range(5)]

    jobs: list[Callable[[], Any]] = [identify for _ in range(4)]
    jobs += [partial(store.enroll, w, signatures(w, "genuine")[:3]) for w in ("W002", "W003", "W004", "W005")]
    results = run_together(jobs)
    assert all(found == ["W001"] * 5 for found in results[:4])
    assert store.identify(query).references == 15
