"""Idempotency keys on claims, on both backends: a claim given again with its key returns the
logged result without scoring or logging again, also when another process logs it between the
look-up and the insert; keys are checked; revision 0006 adds the unique key and removes it again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from inkproof.store import (
    Database,
    IdempotencyKeyConflictError,
    InvalidIdempotencyKeyError,
    SignatureStore,
)
from inkproof.store.database import alembic_config
from inkproof.store.schema import Base, VerificationLog, utcnow
from inkproof.verifier import Verifier

Signatures = Callable[[str, str], list[Path]]


def log_rows(database: Database) -> list[tuple[int, str | None]]:
    with database.session(write=False) as session:
        rows = session.execute(
            select(VerificationLog.id, VerificationLog.idempotency_key).order_by(VerificationLog.id)
        ).all()
    return [(int(i), k) for i, k in rows]


@pytest.fixture(scope="module")
def bundled() -> Iterator[Verifier]:
    """The bundled model: calibrated for claims, so the operating point and K are logged."""
    with Verifier(None, device="cpu", threads=1) as loaded:
        assert loaded.card.claims
        yield loaded


def test_a_key_given_twice_logs_one_claim_and_returns_it(
    database: Database, bundled: Verifier, signatures: Signatures
) -> None:
    store = SignatureStore(database, bundled)
    genuine = signatures("W002", "genuine")
    store.enroll("W002", genuine[:5])
    forged = signatures("W002", "forged")[0]

    first = store.verify_claim("W002", forged, operating_point="eer", idempotency_key="job:0")
    assert first.operating_point == "eer" and first.calibrated_k is not None
    # The query is not read again (a missing file would fail): the key names the claim.
    again = store.verify_claim("W002", forged.with_name("gone.png"), operating_point="eer", idempotency_key="job:0")
    assert log_rows(database) == [(first.log_id, "job:0")]
    assert again.log_id == first.log_id
    replayed, original = again.to_dict(), first.to_dict()
    assert replayed.pop("raw_fused_score") == pytest.approx(original.pop("raw_fused_score"), abs=1e-6)
    assert replayed == original

    # Without a key every call is a claim of its own, as before; with a new key, one more.
    plain = [store.verify_claim("W002", forged, operating_point="eer") for _ in range(2)]
    other = store.verify_claim("W002", forged, operating_point="eer", idempotency_key="job:1")
    assert len({first.log_id, plain[0].log_id, plain[1].log_id, other.log_id}) == 4
    assert other.fused_score == first.fused_score and other.decision == first.decision
    assert [key for _, key in log_rows(database)] == ["job:0", None, None, "job:1"]


def test_a_replayed_claim_survives_review_and_the_writer(
    database: Database, verifier: Verifier, signatures: Signatures
) -> None:
    """The logged row is the answer: its current status after review, writer_id None once the
    writer is deleted (the uncalibrated path: no operating point logged)."""
    store = SignatureStore(database, verifier, accept_threshold=2.0, reject_threshold=-2.0)  # all to review
    store.enroll("W003", signatures("W003", "genuine")[:3])
    first = store.verify_claim("W003", signatures("W003", "genuine")[4], idempotency_key="k")
    assert first.decision == "review" and first.operating_point is None
    store.review(first.log_id, "genuine", "ana")
    store.delete_writer("W003")
    again = store.verify_claim("W003", signatures("W003", "genuine")[4], idempotency_key="k")
    assert (again.log_id, again.decision, again.status, again.writer_id) == (first.log_id, "review", "reviewed", None)
    assert again.fused_score == first.fused_score and again.reference_scores == first.reference_scores
    assert len(log_rows(database)) == 1


class RacingVerifier(Verifier):
    """Embeds a query only after ``rival`` logged the same claim: the look-up of the key found
    nothing, the insert then meets the rival's row (the unique index: IntegrityError)."""

    rival: Callable[[], Any] | None = None

    def embed_query(self, *args: Any, **kwargs: Any) -> Any:
        if self.rival is not None:
            rival, self.rival = self.rival, None
            rival()
        return super().embed_query(*args, **kwargs)


def test_a_concurrent_insert_of_the_key_returns_the_other_row(
    database: Database, store_model: Path, verifier: Verifier, signatures: Signatures
) -> None:
    other = SignatureStore(database, verifier)
    other.enroll("W004", signatures("W004", "genuine")[:3])
    query = signatures("W004", "forged")[1]
    logged: list[Any] = []
    with RacingVerifier(store_model, device="cpu", threads=1) as racing:
        racing.rival = lambda: logged.append(other.verify_claim("W004", query, idempotency_key="race"))
        result = SignatureStore(database, racing).verify_claim("W004", query, idempotency_key="race")
    assert len(logged) == 1 and result.log_id == logged[0].log_id
    assert log_rows(database) == [(result.log_id, "race")]
    assert result.fused_score == logged[0].fused_score


def test_keys_are_checked(store: SignatureStore, database: Database, signatures: Signatures) -> None:
    store.enroll("W005", signatures("W005", "genuine")[:3])
    query = signatures("W005", "genuine")[4]
    for bad in ("", " ", "a b", "tab\there", "nul\x00", "é", "x" * 129, 7):
        with pytest.raises(InvalidIdempotencyKeyError):
            store.verify_claim("W005", query, idempotency_key=bad)  # type: ignore[arg-type]
    assert log_rows(database) == []
    longest = "~" * 128
    assert store.verify_claim("W005", query, idempotency_key=longest).log_id == log_rows(database)[0][0]

    store.enroll("W006", signatures("W006", "genuine")[:3])
    with pytest.raises(IdempotencyKeyConflictError, match="W005"):
        store.verify_claim("W006", query, idempotency_key=longest)
    assert len(log_rows(database)) == 1


def test_the_idempotency_migration_goes_down_and_up(database: Database) -> None:
    assert database.current_revision() == "0006"

    def entry(key: str | None) -> VerificationLog:
        return VerificationLog(
            query_sha256="0" * 64,
            claimed_external_id="w",
            reference_scores=[],
            fused_score=0.5,
            threshold=0.6,
            reject_threshold=0.4,
            decision="review",
            status="pending_review",
            model_tag="m",
            created_at=utcnow(),
            idempotency_key=key,
        )

    with database.session() as session:
        session.add_all([entry(None), entry(None), entry("a")])  # NULLs never collide
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(entry("a"))
    with database.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0005")
    columns = {c["name"] for c in inspect(database.engine).get_columns("verification_logs")}
    assert "idempotency_key" not in columns and "review_note" in columns
    database.upgrade()
    assert database.current_revision() == "0006"
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with database.session(write=False) as session:
        assert session.scalar(select(func.count(VerificationLog.id))) == 3
        assert session.scalars(select(VerificationLog.idempotency_key)).all() == [None] * 3
    with pytest.raises(IntegrityError), database.session() as session:
        session.add_all([entry("b"), entry("b")])
