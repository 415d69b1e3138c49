"""The service's error vocabulary: typed library errors -> HTTP status + JSON body.

Shared by the app, the request guard (which answers before FastAPI runs) and the document worker
processes (which send an error back as plain values, since exceptions do not cross processes).
"""

from __future__ import annotations

import json
import re

from inkproof.errors import InkproofError

SERVER_ERROR_MESSAGE = "the service is misconfigured; see its log"
# "<_io.BytesIO object at 0x7f...>", "<PIL.Image.Image image mode=L size=1x1 at 0x...>": a
# Python repr says nothing to a client and leaks addresses.
_REPR = re.compile(r"<[^<>]*\bat 0x[0-9a-fA-F]+>")


class ServiceError(InkproofError):
    """A request the service refuses, with the HTTP status to answer (and an optional
    Retry-After in seconds for 503s)."""

    def __init__(self, status: int, kind: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.retry_after = retry_after


def status_of(error: BaseException) -> int:
    """The HTTP status of a typed library error (first match wins; subclasses come first)."""
    from inkproof.artifact import ArtifactError
    from inkproof.document.detector import DetectorModelMissingError
    from inkproof.document.pages import InvalidDocumentError
    from inkproof.errors import EmptyDatasetError, InvalidImageError, UnknownWriterError
    from inkproof.store import (
        ApiKeyError,
        DatabaseError,
        IndexUnavailableError,
        InvalidWriterIdError,
        ModelRequiredError,
        NoReferencesError,
        QualityError,
        ReviewError,
        StoreModelMismatchError,
        UnknownReferenceError,
    )
    from inkproof.validation import InvalidFieldError

    if isinstance(error, ServiceError):
        return error.status
    table: list[tuple[type[BaseException], int]] = [
        (InvalidImageError, 422),
        (InvalidDocumentError, 422),
        (QualityError, 422),
        (InvalidWriterIdError, 422),
        (InvalidFieldError, 422),
        (EmptyDatasetError, 422),
        (UnknownWriterError, 404),
        (UnknownReferenceError, 404),
        (NoReferencesError, 409),
        (StoreModelMismatchError, 409),
        (ReviewError, 409),
        (ApiKeyError, 400),
        (DatabaseError, 503),
        (ModelRequiredError, 500),
        (DetectorModelMissingError, 500),
        (IndexUnavailableError, 500),
        (ArtifactError, 500),
    ]
    return next((status for kind, status in table if isinstance(error, kind)), 400)


def kind_of(error: BaseException) -> str:
    return error.kind if isinstance(error, ServiceError) else type(error).__name__


def clean_message(message: str) -> str:
    """A message without Python object reprs (kept to one line and a sane length)."""
    text = _REPR.sub("<upload>", message).replace("\r", " ").replace("\n", " ")
    return text if len(text) <= 2000 else text[:1997] + "..."


def error_body(kind: str, message: str) -> bytes:
    return json.dumps({"error": {"type": kind, "message": clean_message(message)}}).encode()
