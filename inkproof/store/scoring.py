"""Writer-dependent scoring: the card's claims calibration, flagged references and the per-writer
classifiers fitted when a writer's references change (see :mod:`inkproof.claims`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from inkproof.claims import (
    ClaimsCalibration,
    ClaimsConfigError,
    Cohort,
    cosine_matrix,
    fit_writer_model,
    flag_outliers,
    load_cohort,
    settings_for,
)
from inkproof.store.base import StoreBase
from inkproof.store.errors import (
    StoreModelMismatchError,
)
from inkproof.store.helpers import (
    embedding_matrix,
)
from inkproof.store.results import (
    ReferenceCheck,
)
from inkproof.store.schema import (
    Reference,
    Writer,
    WriterScoring,
    utcnow,
)


class ScoringMixin(StoreBase):
    """Fits and refits each writer's claim scoring."""

    # --- writer-dependent scoring ----------------------------------------------------------

    @property
    def claims(self) -> tuple[ClaimsCalibration, Cohort | None] | None:
        """The card's claims calibration and cohort, or None: plain fusion with the card's
        global thresholds (models calibrated before writer-dependent scoring existed)."""
        with self._claims_lock:
            if not self._claims_loaded:
                section = self.card.claims
                if section:
                    calibration = ClaimsCalibration.from_dict(section)
                    cohort = None
                    if calibration.needs_cohort():
                        path = getattr(self.verifier, "card_path", None)
                        if path is None:
                            raise ClaimsConfigError("the verifier does not say where its model card is")
                        cohort = load_cohort(Path(path).parent / calibration.cohort_file, calibration.cohort_sha256)
                    self._claims = (calibration, cohort)
                self._claims_loaded = True
            return self._claims

    def _pair_matrix(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.card.head == "cosine":
            return cosine_matrix(a, b)
        rows = np.repeat(np.arange(len(a)), len(b))
        cols = np.tile(np.arange(len(b)), len(a))
        return np.asarray(self.verifier.score_embeddings(a[rows], b[cols]), dtype=np.float64).reshape(len(a), len(b))

    def _fit_scoring(self, writer_id: int, ids: Sequence[int], matrix: np.ndarray) -> WriterScoring | None:
        """Flag odd references and fit the writer's classifier (None without a claims calibration)."""
        claims = self.claims
        if claims is None or not ids:
            return None
        calibration, cohort = claims
        check = flag_outliers(matrix, calibration.outlier_threshold, pair_matrix=self._pair_matrix)
        flagged = set(check.flagged)
        used = [i for i in range(len(ids)) if i not in flagged]
        method = calibration.method_for(len(used))
        parameters = None
        if method in ("logreg", "svm-linear", "svm-rbf"):
            assert cohort is not None
            model = fit_writer_model(method, matrix[used], cohort, settings_for(calibration.settings, method))
            parameters = model.to_dict()
        return WriterScoring(
            writer_id=writer_id,
            model_tag=self.model_tag,
            scoring=calibration.fingerprint(),
            method=method,
            reference_ids=[int(ids[i]) for i in used],
            flagged_ids=[int(ids[i]) for i in sorted(flagged)],
            consistency={str(ids[i]): value for i, value in enumerate(check.consistency) if value == value},
            parameters=parameters,
            fitted_at=utcnow(),
        )

    def _stale(self, row: WriterScoring | None, ids: Sequence[int]) -> bool:
        if self._verifier is None:  # maintenance only: nothing to compare with
            return False
        claims = self.claims
        if claims is None:
            return False
        if row is None or row.model_tag != self.model_tag or row.scoring != claims[0].fingerprint():
            return True
        return sorted([*row.reference_ids, *row.flagged_ids]) != sorted(int(i) for i in ids)

    def _refit_writer(self, session: Session, writer_id: int) -> WriterScoring | None:
        """Refit the writer's scoring inside ``session`` (after its references changed)."""
        if self.claims is None:
            return None
        ids, matrix = self._writer_embeddings(session, writer_id)
        row = self._fit_scoring(writer_id, ids, matrix)
        existing = session.get(WriterScoring, writer_id)
        if row is None:
            if existing is not None:
                session.delete(existing)
            return None
        if existing is None:
            session.add(row)
            return row
        for column in ("model_tag", "scoring", "method", "reference_ids", "flagged_ids", "consistency", "parameters"):
            setattr(existing, column, getattr(row, column))
        existing.fitted_at = row.fitted_at
        return existing

    def _writer_embeddings(
        self, session: Session, writer_id: int, *, digests: dict[int, str] | None = None
    ) -> tuple[list[int], np.ndarray]:
        """A writer's reference ids and embeddings in id order; ``digests`` (when given) receives
        each reference's image sha256 from the same query."""
        rows = session.execute(
            select(
                Reference.id, Reference.embedding, Reference.embedding_dim, Reference.model_tag, Reference.image_sha256
            )
            .where(Reference.writer_id == writer_id)
            .order_by(Reference.id)
        )
        ids: list[int] = []
        blobs: list[bytes] = []
        for ref_id, blob, dim, tag, sha256 in rows:
            if tag != self.model_tag or dim != self.card.embedding_dim:
                raise StoreModelMismatchError(tag, self.model_tag)
            ids.append(int(ref_id))
            blobs.append(blob)
            if digests is not None:
                digests[int(ref_id)] = str(sha256)
        return ids, embedding_matrix(blobs, self.card.embedding_dim)

    @staticmethod
    def _checks(row: WriterScoring | None, ids: Sequence[int]) -> tuple[ReferenceCheck, ...]:
        if row is None:
            return ()
        flagged = set(row.flagged_ids)
        return tuple(ReferenceCheck(int(i), row.consistency.get(str(i)), int(i) in flagged) for i in ids)

    def refit_writers(self) -> int:
        """Refit every writer's scoring (after a reindex or a new claims calibration); returns how many."""
        if self.claims is None:
            return 0
        writer_ids = self._read(lambda session: [int(i) for i in session.scalars(select(Writer.id))])
        for writer_id in writer_ids:

            def refit(session: Session, wid: int = writer_id) -> None:
                self._refit_writer(session, wid)

            self._write(refit)
        return len(writer_ids)
