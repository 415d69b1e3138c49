"""Writers and their reference signatures: create, list, read, delete, and enroll references."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inkproof.errors import InvalidImageError
from inkproof.imaging import ImageSource, describe_source, image_digest
from inkproof.store.errors import (
    QualityError,
    UnknownReferenceError,
)
from inkproof.store.helpers import (
    clean_display_name,
    clean_external_id,
    embedding_bytes,
    encode_png,
    record_changes,
)
from inkproof.store.quality import assess
from inkproof.store.results import (
    EnrollResult,
    ImageOutcome,
    QualityPolicy,
    ReferenceCheck,
    ReferenceInfo,
    WriterDetail,
    WriterInfo,
)
from inkproof.store.schema import (
    Reference,
    Writer,
    WriterScoring,
    utcnow,
)
from inkproof.store.scoring import ScoringMixin
from inkproof.validation import InvalidFieldError, clean_row_id


@dataclass(frozen=True)
class _Prepared:
    index: int
    source: str
    gray: np.ndarray
    digest: str
    quality_score: float
    problems: tuple[str, ...]


def _index(outcome: ImageOutcome) -> int:
    return outcome.index


class WritersMixin(ScoringMixin):
    """Writers, references and enrollment (a writer's scoring is refitted as its references change)."""

    # --- writers ---------------------------------------------------------------------------

    def _get_or_create_writer(
        self, session: Session, external_id: str, display_name: str | None, *, lock: bool = False
    ) -> tuple[Writer, bool]:
        query = select(Writer).where(Writer.external_id == external_id)
        if lock:
            # FOR NO KEY UPDATE: enrollments of the writer queue, claims logging against it do not.
            query = query.with_for_update(key_share=True)
        writer = session.scalar(query)
        if writer is None:
            candidate = Writer(
                external_id=external_id,
                display_name=display_name if display_name is not None else external_id,
                created_at=utcnow(),
            )
            try:
                with session.begin_nested():
                    session.add(candidate)
                return candidate, True
            except IntegrityError:  # created concurrently: use that one
                writer = session.scalar(query)
                if writer is None:
                    raise
        if display_name is not None and writer.display_name != display_name:
            writer.display_name = display_name
        return writer, False

    def _reference_count(self, session: Session, writer_id: int) -> int:
        count = session.scalar(select(func.count(Reference.id)).where(Reference.writer_id == writer_id))
        return int(count or 0)

    def _writer_info(self, session: Session, writer: Writer) -> WriterInfo:
        return WriterInfo(
            id=writer.id,
            external_id=writer.external_id,
            display_name=writer.display_name,
            created_at=writer.created_at,
            references=self._reference_count(session, writer.id),
        )

    def create_writer(self, external_id: str, display_name: str | None = None) -> WriterInfo:
        """Get or create the writer ``external_id`` (safe when several callers race)."""
        external_id = clean_external_id(external_id)
        display_name = clean_display_name(display_name)

        def work(session: Session) -> WriterInfo:
            writer, _ = self._get_or_create_writer(session, external_id, display_name)
            session.flush()
            return self._writer_info(session, writer)

        return self._write(work)

    def list_writers(self) -> list[WriterInfo]:
        def work(session: Session) -> list[WriterInfo]:
            query = (
                select(Writer, func.count(Reference.id))
                .outerjoin(Reference, Reference.writer_id == Writer.id)
                .group_by(Writer.id)
                .order_by(Writer.external_id)
            )
            return [
                WriterInfo(w.id, w.external_id, w.display_name, w.created_at, int(count))
                for w, count in session.execute(query)
            ]

        return self._read(work)

    def get_writer(self, external_id: str) -> WriterDetail:
        external_id = clean_external_id(external_id)

        def work(session: Session) -> WriterDetail:
            writer = self._find_writer(session, external_id)
            rows = session.execute(
                select(
                    Reference.id,
                    Reference.image_sha256,
                    Reference.quality_score,
                    Reference.model_tag,
                    Reference.preprocess_version,
                    Reference.created_at,
                )
                .where(Reference.writer_id == writer.id)
                .order_by(Reference.id)
            )
            references = tuple(ReferenceInfo(*row) for row in rows)
            scoring = session.get(WriterScoring, writer.id)
            current = scoring is not None and not self._stale(scoring, [r.id for r in references])
            return WriterDetail(
                id=writer.id,
                external_id=writer.external_id,
                display_name=writer.display_name,
                created_at=writer.created_at,
                references=references,
                checks=self._checks(scoring, [r.id for r in references]) if current else (),
                scoring_method=scoring.method if current and scoring is not None else None,
            )

        return self._read(work)

    def reference_image(self, reference_id: int) -> bytes:
        """The stored reference image as a grayscale PNG."""
        try:
            reference_id = clean_row_id(int(reference_id), "reference id")
        except (InvalidFieldError, TypeError, ValueError):
            raise UnknownReferenceError(reference_id) from None

        def work(session: Session) -> bytes:
            data = session.scalar(select(Reference.image_png).where(Reference.id == int(reference_id)))
            if data is None:
                raise UnknownReferenceError(int(reference_id))
            return bytes(data)

        return self._read(work)

    def delete_writer(self, external_id: str) -> None:
        """Remove the writer with its reference images and embeddings. Verification logs stay
        (they keep ``claimed_external_id``; their ``writer_id`` becomes NULL)."""
        external_id = clean_external_id(external_id)

        def work(session: Session) -> None:
            writer = self._find_writer(session, external_id)
            gone = list(session.scalars(select(Reference.id).where(Reference.writer_id == writer.id)))
            session.execute(delete(Reference).where(Reference.writer_id == writer.id))
            session.execute(delete(Writer).where(Writer.id == writer.id))
            record_changes(session, [], gone)

        self._write(work)

    def delete_reference(self, external_id: str, reference_id: int) -> WriterDetail:
        """Remove one reference of ``external_id``; the writer's scoring is refitted on the rest."""
        external_id = clean_external_id(external_id)
        reference_id = clean_row_id(int(reference_id), "reference id")

        def work(session: Session) -> None:
            if self._verifier is not None:
                self._check_compatible(session)
            writer = self._find_writer(session, external_id)
            owner = session.scalar(select(Reference.writer_id).where(Reference.id == int(reference_id)))
            if owner != writer.id:
                raise UnknownReferenceError(int(reference_id))
            session.execute(delete(Reference).where(Reference.id == int(reference_id)))
            record_changes(session, [], [int(reference_id)])
            session.flush()
            if self._verifier is not None:
                self._refit_writer(session, writer.id)
            else:  # no model to refit with: the next claim refits it
                session.execute(delete(WriterScoring).where(WriterScoring.writer_id == writer.id))

        self._write(work)
        self._invalidate()
        return self.get_writer(external_id)

    # --- enrollment ------------------------------------------------------------------------

    def enroll(
        self,
        external_id: str,
        images: Sequence[ImageSource],
        *,
        display_name: str | None = None,
        quality: QualityPolicy = "reject",
    ) -> EnrollResult:
        """Add reference signatures for ``external_id`` (the writer is created if needed).

        Each image is loaded and quality-checked; unreadable images and (with
        ``quality="reject"``) images that fail a check are skipped and reported. With
        ``quality="warn"`` they are kept, their problems reported. An image already enrolled for
        the writer is a no-op reported as a duplicate. Raises :class:`QualityError` when no image
        is usable. All accepted images are embedded first; the writer and all its new references
        are then written in one transaction.
        """
        external_id = clean_external_id(external_id)
        display_name = clean_display_name(display_name)
        if quality not in ("reject", "warn"):
            raise ValueError(f"quality must be 'reject' or 'warn', got {quality!r}")
        if isinstance(images, str | bytes) or not isinstance(images, Sequence):
            raise TypeError("images must be a sequence of image sources (paths, bytes, arrays, PIL images)")
        if not images:
            raise QualityError("no images given to enroll")
        self._read(self._check_compatible)  # fail before the expensive part

        outcomes: dict[int, ImageOutcome] = {}
        prepared: list[_Prepared] = []
        for index, source in enumerate(images):
            name = describe_source(source)
            try:
                gray = self._load(source)
            except InvalidImageError as exc:
                outcomes[index] = ImageOutcome(index, name, None, False, None, None, (exc.reason,), False)
                continue
            report = assess(gray)
            digest = image_digest(gray)
            if not report.ok and quality == "reject":
                outcomes[index] = ImageOutcome(index, name, digest, False, None, report.score, report.problems, False)
                continue
            prepared.append(_Prepared(index, name, gray, digest, report.score, report.problems))
        if not prepared:
            details = "; ".join(
                f"#{o.index} {o.source}: {', '.join(o.problems)}" for o in sorted(outcomes.values(), key=_index)
            )
            raise QualityError(f"no usable reference image for {external_id!r}: {details}", tuple(outcomes.values()))

        embeddings = self._embed([item.gray for item in prepared])
        pngs = [encode_png(item.gray) for item in prepared]
        preprocess_version = self.card.preprocess_version

        def work(
            session: Session,
        ) -> tuple[WriterInfo, bool, dict[int, ImageOutcome], tuple[ReferenceCheck, ...], str | None]:
            meta = self._check_compatible(session, lock=True)
            self._claim_model(session, meta)
            # The writer's row stays locked until commit: enrollments of one writer take turns
            # (on PostgreSQL; SQLite serialises all writes), so the second sees the first's rows.
            writer, created = self._get_or_create_writer(session, external_id, display_name, lock=True)
            session.flush()
            existing: dict[str, int] = {
                digest: ref_id
                for digest, ref_id in session.execute(
                    select(Reference.image_sha256, Reference.id).where(Reference.writer_id == writer.id)
                )
            }
            now = utcnow()
            new: dict[str, Reference] = {}
            for item, embedding, png in zip(prepared, embeddings, pngs, strict=True):
                if item.digest in existing or item.digest in new:
                    continue
                new[item.digest] = Reference(
                    writer_id=writer.id,
                    image_sha256=item.digest,
                    image_png=png,
                    embedding=embedding_bytes(embedding),
                    embedding_dim=int(embedding.shape[0]),
                    model_tag=self.model_tag,
                    preprocess_version=preprocess_version,
                    quality_score=item.quality_score,
                    created_at=now,
                )
            session.add_all(new.values())
            session.flush()
            record_changes(session, [reference.id for reference in new.values()], [])
            results: dict[int, ImageOutcome] = {}
            reported: set[str] = set()
            for item in prepared:
                # The first copy of a new image added it; anything else is a duplicate.
                duplicate = item.digest not in new or item.digest in reported
                reported.add(item.digest)
                reference_id = new[item.digest].id if item.digest in new else existing[item.digest]
                results[item.index] = ImageOutcome(
                    item.index,
                    item.source,
                    item.digest,
                    True,
                    reference_id,
                    item.quality_score,
                    item.problems,
                    duplicate,
                )
            # Refit in the same transaction: a claim never sees new references with an old model.
            ids = [
                int(i)
                for i in session.scalars(
                    select(Reference.id).where(Reference.writer_id == writer.id).order_by(Reference.id)
                )
            ]
            scoring = session.get(WriterScoring, writer.id)
            if new or self._stale(scoring, ids):
                scoring = self._refit_writer(session, writer.id)
            checks = self._checks(scoring, ids)
            return self._writer_info(session, writer), created, results, checks, scoring.method if scoring else None

        writer_info, created, accepted, checks, method = self._write(work)
        outcomes.update(accepted)
        if accepted:
            self._invalidate()
        return EnrollResult(writer_info, created, tuple(outcomes[i] for i in sorted(outcomes)), checks, method)
