"""The enrollment store: writers, their reference signatures, claims against them, human review.

:class:`SignatureStore` joins a :class:`~inkproof.store.database.Database` and a
:class:`~inkproof.verifier.Verifier`. Every public method opens its own short sessions, so one
store object can serve many threads. Images are decoded, checked and embedded *before* any
transaction starts; each change is then written in a single transaction, so a process killed at
any moment leaves a writer either absent or with its complete reference set.

Embeddings are only comparable when they come from the same model: the store records the model
tag of its embeddings and refuses to mix in another model's (:class:`StoreModelMismatchError`)
until :meth:`SignatureStore.reindex` has re-embedded every stored reference image.

The class is assembled here from one part per job: :mod:`~inkproof.store.base` (settings,
transactions, model consistency, images), :mod:`~inkproof.store.scoring` (writer-dependent
scoring), :mod:`~inkproof.store.writers` (writers, references, enrollment),
:mod:`~inkproof.store.verification` (claims), :mod:`~inkproof.store.review` (review queue and
log), :mod:`~inkproof.store.identification` (identification and its persistent index),
:mod:`~inkproof.store.reindexing` and :mod:`~inkproof.store.api_keys`; errors, results and shared
helpers live in :mod:`~inkproof.store.errors`, :mod:`~inkproof.store.results` and
:mod:`~inkproof.store.helpers` (the package :mod:`inkproof.store` re-exports the public ones).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inkproof.store.api_keys import ApiKeysMixin
from inkproof.store.helpers import META_MODEL_TAG, META_REINDEX
from inkproof.store.identification import IdentificationMixin
from inkproof.store.reindexing import ReindexMixin
from inkproof.store.results import StoreInfo
from inkproof.store.review import ReviewMixin
from inkproof.store.schema import Reference, VerificationLog, Writer
from inkproof.store.verification import ClaimsMixin
from inkproof.store.writers import WritersMixin

__all__ = ["SignatureStore"]


class SignatureStore(WritersMixin, ClaimsMixin, ReviewMixin, IdentificationMixin, ReindexMixin, ApiKeysMixin):
    """Enrollment, claims, identification and review over one database and one model.

    ``accept_rule`` and ``reject_rule`` name the card's calibrated thresholds used to accept and to
    reject a claim (scores in between go to human review); ``accept_threshold`` and
    ``reject_threshold`` replace them with fixed values ("custom"). Writers with at least
    ``per_writer_min_references`` references get a tighter accept threshold of their own
    (see :meth:`writer_threshold`).

    With a model card calibrated for claims (``card.claims``, :mod:`inkproof.claims`), claims are
    scored with the method and thresholds chosen on validation writers for the writer's number of
    references instead: ``operating_point`` (eer, far-skilled-1, far-skilled-5) picks the accept
    threshold, the EER threshold the reject one; custom thresholds still override them.

    ``verifier=None`` opens the store for maintenance only (writers, review queue, API keys):
    whatever embeds or scores images then raises :class:`ModelRequiredError`.
    """

    # --- overview --------------------------------------------------------------------------

    def info(self) -> StoreInfo:
        def work(session: Session) -> StoreInfo:
            meta = self._meta(session)

            def count(query: Any) -> int:
                return int(session.scalar(query) or 0)

            return StoreInfo(
                writers=count(select(func.count(Writer.id))),
                references=count(select(func.count(Reference.id))),
                verifications=count(select(func.count(VerificationLog.id))),
                pending_reviews=count(
                    select(func.count(VerificationLog.id)).where(VerificationLog.status == "pending_review")
                ),
                model_tag=self._model_tag,
                stored_model_tag=meta.get(META_MODEL_TAG),
                reindex_in_progress=META_REINDEX in meta,
            )

        return self._read(work)
