"""Typed errors of the enrollment store (all of them :class:`~inkproof.store.database.StoreError`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from inkproof.store.database import StoreError

if TYPE_CHECKING:
    from inkproof.store.results import ImageOutcome


# --- errors ------------------------------------------------------------------------------------


class StoreModelMismatchError(StoreError):
    """The store's embeddings were made by another model than the verifier's."""

    def __init__(self, stored: str, current: str, detail: str = "") -> None:
        self.stored = stored
        self.current = current
        super().__init__(
            detail
            or (
                f"the store holds embeddings of model {stored!r} but the verifier runs {current!r}; "
                "run `inkproof store reindex` with the new model to re-embed the stored references"
            )
        )


class ReindexInProgressError(StoreModelMismatchError):
    """A reindex is running (or was interrupted): the embeddings are a mix of two models."""


class QualityError(StoreError, ValueError):
    """No submitted reference image could be used; ``outcomes`` says why for each one."""

    def __init__(self, message: str, outcomes: Sequence[ImageOutcome] = ()) -> None:
        self.outcomes = tuple(outcomes)
        super().__init__(message)


class ReviewError(StoreError, ValueError):
    """A review action that is not allowed (unknown log, not pending, bad decision)."""


class NoReferencesError(StoreError, ValueError):
    """The writer exists but has no reference signatures to compare with."""


class UnknownReferenceError(StoreError, KeyError):
    def __init__(self, reference_id: int) -> None:
        self.reference_id = reference_id
        super().__init__(reference_id)

    def __str__(self) -> str:
        return f"unknown reference: {self.reference_id}"


class InvalidWriterIdError(StoreError, ValueError):
    """An external writer id that is empty or too long."""


class InvalidIdempotencyKeyError(StoreError, ValueError):
    """An idempotency key that is not 1-128 visible ASCII characters."""


class IdempotencyKeyConflictError(StoreError, ValueError):
    """An idempotency key already logged for a claim on another writer or operating point."""


class ModelRequiredError(StoreError):
    """The store was opened without a model, and this operation embeds or scores images."""


class ApiKeyError(StoreError, ValueError):
    """An API key name that is empty, taken or unknown."""
