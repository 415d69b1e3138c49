"""Documents in the enrollment store: every signature found on every page, searchable by writer.

A user indexes a collection of scanned documents; each signature found on a page is kept with its
document, page and box, its crop (grayscale PNG) and its embedding by the store's model. A query
signature then lists the documents most likely signed by the same person, each ranked by its
best-matching signature::

    store = SignatureStore(open_database("inkproof.db"), Verifier("model.json"))
    store.documents.index_folder("scans/", PageDetector.from_card("detector/model.json"))
    for match in store.documents.search_documents("query.png").matches:
        print(match.rank, match.name, match.page, match.box, f"{match.score:.3f}", match.decision)

The rules of references apply here too: crops are decoded and embedded (batched) *before* the one
transaction that writes a document with all its signatures, so a process killed at any moment
leaves a document either absent or complete; documents are unique by the sha256 of their file
bytes, so indexing the same file again returns the stored document; embeddings carry the model
tag and :meth:`~inkproof.store.SignatureStore.reindex` re-embeds them with references, so a store
never mixes two models. Search is exact (numpy) below the store's ``index_threshold`` signatures
and uses the same HNSW index as identification above it (product heads: every signature scored).

:meth:`DocumentStore.index_file` and :meth:`DocumentStore.index_folder` are the glue from files to
signatures: pages come from :func:`inkproof.document.pages.iter_pages` (one at a time), and any
detector that satisfies :class:`PageDetectorLike` (such as
:class:`inkproof.document.detector.PageDetector`), or a plain function of a page image, finds the
boxes. With a cleaner (:class:`inkproof.document.cleaner.SignatureCleaner`) each crop, and the
query of a search, is cleaned of print and lines before it is embedded.

Crop-against-crop scores run lower than the scans of clean signatures the model's thresholds were
calibrated on (Tobacco800 same-signer crops: median 0.59 against the model's "no match" level of
0.70), so search decisions use thresholds calibrated on cleaned crops of Tobacco800 *validation*
signers when the store's model has them (:data:`CROP_CALIBRATION`, written by
``python -m inkproof.benchmark.document_search``); custom thresholds of the store still win.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from inkproof.errors import InvalidImageError
from inkproof.imaging import ImageSource, describe_source, image_digest
from inkproof.store.database import StoreError
from inkproof.store.errors import StoreModelMismatchError
from inkproof.store.helpers import (
    META_EMBEDDINGS_VERSION,
    embedding_bytes,
    embedding_matrix,
    encode_png,
    snapshot_arrays,
)
from inkproof.store.index import EmbeddingSnapshot, IndexKind, SnapshotCache, best_row_per_owner
from inkproof.store.quality import assess
from inkproof.store.results import JsonResult
from inkproof.store.schema import Document, DocumentSignature, Writer, utcnow

if TYPE_CHECKING:
    from inkproof.store.repository import SignatureStore

Box = tuple[int, int, int, int]
SearchDecision = Literal["match", "review", "no_match"]

#: Crop-vs-crop thresholds of the bundled model (see the module docstring); used when the tag matches.
CROP_CALIBRATION = Path(__file__).resolve().parents[1] / "assets" / "models" / "default" / "document-search.json"

#: Files that :meth:`DocumentStore.index_folder` reads (by suffix, case-insensitive).
DOCUMENT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pdf")
MAX_DOCUMENT_NAME_LENGTH = 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_IDENTIFY_BATCH = 256


# --- errors ------------------------------------------------------------------------------------


class UnknownDocumentError(StoreError, KeyError):
    def __init__(self, reference: object) -> None:
        self.reference = reference
        super().__init__(reference)

    def __str__(self) -> str:
        return f"unknown document: {self.reference!r}"


class DocumentNameTakenError(StoreError, ValueError):
    """Another file (other bytes) is already indexed under this name."""


class InvalidDocumentInputError(StoreError, ValueError):
    """A document or one of its signatures that cannot be stored (bad name, page, box, crop)."""


# --- detectors ---------------------------------------------------------------------------------


class DetectedField(Protocol):
    """One box a detector found (:class:`inkproof.document.detector.FieldDetection` is one)."""

    @property
    def label(self) -> str: ...

    @property
    def box(self) -> Box: ...

    @property
    def confidence(self) -> float: ...


class PageFields(Protocol):
    """What a detector found on a page (:class:`inkproof.document.detector.PageDetections`)."""

    @property
    def detections(self) -> Sequence[DetectedField]: ...


@runtime_checkable
class PageDetectorLike(Protocol):
    """A page detector: :class:`inkproof.document.detector.PageDetector` is one."""

    def detect(self, page: np.ndarray) -> PageFields: ...


#: A detector object, or a function from a page image to its fields (or to a PageFields).
Detector = PageDetectorLike | Callable[[np.ndarray], "PageFields | Sequence[DetectedField]"]


# --- inputs and results ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureInput:
    """A signature to store with its document: ``box`` in page pixels (x1/y1 exclusive) and the
    already-cropped ``image``. Plain ``(page, box, confidence, image)`` tuples work too."""

    page: int  # 0-based
    box: Box
    confidence: float
    image: ImageSource


@dataclass(frozen=True)
class DocumentSignatureInfo(JsonResult):
    id: int
    page: int
    box: Box
    confidence: float
    crop_sha256: str
    quality_score: float
    model_tag: str
    writer_external_id: str | None  # closest enrolled writer when identified (None: none, or cleared)
    writer_score: float | None


@dataclass(frozen=True)
class DocumentInfo(JsonResult):
    id: int
    name: str
    file_sha256: str
    pages: int
    signatures: int
    detector: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class DocumentDetail(JsonResult):
    id: int
    name: str
    file_sha256: str
    pages: int
    detector: str | None
    created_at: dt.datetime
    signatures: tuple[DocumentSignatureInfo, ...]


@dataclass(frozen=True)
class IndexedDocument(JsonResult):
    """The stored document; ``created`` is False when these file bytes were indexed before."""

    document: DocumentDetail
    created: bool


@dataclass(frozen=True)
class DocumentMatch(JsonResult):
    rank: int
    document_id: int
    name: str
    pages: int
    signature_id: int  # the document's best-matching signature
    page: int
    box: Box
    score: float
    decision: SearchDecision  # >= accept "match", < reject "no_match" (crop thresholds when calibrated)
    writer_external_id: str | None


@dataclass(frozen=True)
class DocumentSearchResult(JsonResult):
    matches: tuple[DocumentMatch, ...]
    index: str  # "exact", "approximate" or "head" (product heads: every signature scored)
    signatures: int  # how many stored signatures were searched
    accept_threshold: float
    reject_threshold: float
    threshold_source: str
    model_tag: str
    query_sha256: str


FolderStatus = Literal["indexed", "existing", "failed"]


@dataclass(frozen=True)
class FolderEntry(JsonResult):
    source: str  # path relative to the folder (the document's name when indexed)
    status: FolderStatus
    document_id: int | None
    name: str | None  # the stored name ("existing": the name it was first indexed under)
    pages: int
    signatures: int
    error: str | None


@dataclass(frozen=True)
class FolderIndexResult(JsonResult):
    folder: str
    entries: tuple[FolderEntry, ...]

    def count(self, status: FolderStatus) -> int:
        return sum(1 for entry in self.entries if entry.status == status)

    def to_dict(self) -> dict[str, Any]:
        values = super().to_dict()
        values.update({status: self.count(status) for status in ("indexed", "existing", "failed")})
        return values


@dataclass(frozen=True)
class _Crop:
    page: int
    box: Box
    confidence: float
    gray: np.ndarray
    digest: str
    quality_score: float


# --- helpers -----------------------------------------------------------------------------------


class CropCleanerLike(Protocol):
    """What indexing and search need of a cleaner: ``clean(image).image`` is the cleaned uint8 crop."""

    def clean(self, image: np.ndarray) -> Any: ...


def _cleaned(cleaner: CropCleanerLike | None, gray: np.ndarray) -> np.ndarray:
    return gray if cleaner is None else np.asarray(cleaner.clean(gray).image, dtype=np.uint8)


def crop_calibration(model_tag: str, path: str | Path | None = None) -> tuple[float, float, str] | None:
    """(accept, reject, source) calibrated on document crops for ``model_tag``, or None when the
    calibration file is absent or belongs to another model."""
    import json

    source = Path(path) if path is not None else CROP_CALIBRATION
    try:
        values = json.loads(source.read_text(encoding="utf-8"))
        if values.get("model_tag") != model_tag:
            return None
        accept, reject = float(values["thresholds"]["far_1"]), float(values["thresholds"]["eer"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return accept, min(reject, accept), "document-crops:far_1"


def _clean_name(name: str) -> str:
    value = str(name).strip()
    if not value:
        raise InvalidDocumentInputError("a document needs a name")
    if len(value) > MAX_DOCUMENT_NAME_LENGTH:
        raise InvalidDocumentInputError(f"document name is longer than {MAX_DOCUMENT_NAME_LENGTH} characters")
    return value


def _clean_sha256(value: str) -> str:
    digest = str(value).strip().lower()
    if not _SHA256.match(digest):
        raise InvalidDocumentInputError(f"file_sha256 must be 64 hex digits, got {value!r}")
    return digest


def _clean_box(box: Any, where: str) -> Box:
    try:
        values = tuple(int(v) for v in box)
    except (TypeError, ValueError):
        raise InvalidDocumentInputError(f"{where}: box must be four integers (x0, y0, x1, y1), got {box!r}") from None
    if len(values) != 4:
        raise InvalidDocumentInputError(f"{where}: box must be four integers (x0, y0, x1, y1), got {box!r}")
    x0, y0, x1, y1 = values
    if x0 < 0 or y0 < 0 or x1 <= x0 or y1 <= y0:
        raise InvalidDocumentInputError(f"{where}: box {values} is empty or has negative coordinates")
    return x0, y0, x1, y1


def _box_of(row: DocumentSignature) -> Box:
    return row.x0, row.y0, row.x1, row.y1


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_files(folder: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """(path, path relative to ``folder``) of every document file under it, recursively, in
    path order: what :meth:`DocumentStore.index_folder` indexes, each under its relative path."""
    from inkproof.document.pages import InvalidDocumentError

    root = Path(folder)
    if not root.is_dir():
        raise InvalidDocumentError(str(root), "not a folder")
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES]
    return sorted(((p, p.relative_to(root).as_posix()) for p in files), key=lambda item: item[1])


def _detect_function(detector: Detector) -> Callable[[np.ndarray], Sequence[DetectedField]]:
    call: Callable[[np.ndarray], Any] = detector.detect if isinstance(detector, PageDetectorLike) else detector

    def fields(page: np.ndarray) -> Sequence[DetectedField]:
        found = call(page)
        return tuple(found.detections if hasattr(found, "detections") else found)

    return fields


def _detector_name(detector: Detector) -> str | None:
    name = getattr(detector, "name", None) or getattr(detector, "__name__", None)
    return str(name)[:255] if name else None


# --- the document store ------------------------------------------------------------------------


class DocumentStore:
    """Documents of one :class:`~inkproof.store.SignatureStore` (``store.documents``).

    Thread-safe like the store: each method opens its own short sessions.
    """

    def __init__(self, store: SignatureStore, *, crop_calibration: str | Path | None = None) -> None:
        self.store = store
        self.crop_calibration = crop_calibration  # None: the bundled model's file
        self._snapshots = SnapshotCache()  # signature embeddings (ids, document of each)

    def thresholds(self) -> tuple[float, float, str]:
        """(accept, reject, source) of search decisions: the store's custom thresholds when set,
        else the crop calibration of the store's model when there is one, else the model's."""
        store = self.store
        if store.custom_accept is None and store.custom_reject is None:
            calibrated = crop_calibration(store.model_tag, self.crop_calibration)
            if calibrated is not None:
                return calibrated
        return store.thresholds()

    def _invalidate(self) -> None:
        self._snapshots.invalidate()

    # --- reading ---------------------------------------------------------------------------

    @staticmethod
    def _find(session: Session, reference: int | str) -> Document:
        """A document by id (an int) or by name (a string; a string of digits naming no
        document is tried as an id)."""
        if isinstance(reference, int | np.integer):
            document = session.get(Document, int(reference))
        else:
            text = str(reference).strip()
            document = session.scalar(select(Document).where(Document.name == text))
            if document is None and text.isdigit():
                document = session.get(Document, int(text))
        if document is None:
            raise UnknownDocumentError(reference)
        return document

    @staticmethod
    def _signature_count(session: Session, document_id: int) -> int:
        count = session.scalar(
            select(func.count(DocumentSignature.id)).where(DocumentSignature.document_id == document_id)
        )
        return int(count or 0)

    def _info(self, session: Session, document: Document) -> DocumentInfo:
        return DocumentInfo(
            id=document.id,
            name=document.name,
            file_sha256=document.file_sha256,
            pages=document.pages,
            signatures=self._signature_count(session, document.id),
            detector=document.detector,
            created_at=document.created_at,
        )

    @staticmethod
    def _detail(session: Session, document: Document) -> DocumentDetail:
        rows = session.execute(
            select(
                DocumentSignature.id,
                DocumentSignature.page,
                DocumentSignature.x0,
                DocumentSignature.y0,
                DocumentSignature.x1,
                DocumentSignature.y1,
                DocumentSignature.confidence,
                DocumentSignature.crop_sha256,
                DocumentSignature.quality_score,
                DocumentSignature.model_tag,
                Writer.external_id,
                DocumentSignature.writer_score,
            )
            .outerjoin(Writer, Writer.id == DocumentSignature.writer_id)
            .where(DocumentSignature.document_id == document.id)
            .order_by(DocumentSignature.page, DocumentSignature.y0, DocumentSignature.x0, DocumentSignature.id)
        )
        signatures = tuple(
            DocumentSignatureInfo(
                id=sig_id,
                page=page,
                box=(x0, y0, x1, y1),
                confidence=confidence,
                crop_sha256=crop_sha,
                quality_score=quality,
                model_tag=tag,
                writer_external_id=external,
                writer_score=score if external is not None else None,
            )
            for sig_id, page, x0, y0, x1, y1, confidence, crop_sha, quality, tag, external, score in rows
        )
        return DocumentDetail(
            id=document.id,
            name=document.name,
            file_sha256=document.file_sha256,
            pages=document.pages,
            detector=document.detector,
            created_at=document.created_at,
            signatures=signatures,
        )

    def lookup(self, file_sha256: str) -> DocumentDetail | None:
        """The document indexed from these file bytes (their sha256), or None."""
        digest = _clean_sha256(file_sha256)

        def work(session: Session) -> DocumentDetail | None:
            document = session.scalar(select(Document).where(Document.file_sha256 == digest))
            return None if document is None else self._detail(session, document)

        return self.store._read(work)

    def list_documents(self) -> list[DocumentInfo]:
        """Every indexed document with its signature count, by name."""

        def work(session: Session) -> list[DocumentInfo]:
            query = (
                select(Document, func.count(DocumentSignature.id))
                .outerjoin(DocumentSignature, DocumentSignature.document_id == Document.id)
                .group_by(Document.id)
                .order_by(Document.name)
            )
            return [
                DocumentInfo(d.id, d.name, d.file_sha256, d.pages, int(count), d.detector, d.created_at)
                for d, count in session.execute(query)
            ]

        return self.store._read(work)

    def get_document(self, reference: int | str) -> DocumentDetail:
        """One document (by id or name) with its signatures."""
        return self.store._read(lambda session: self._detail(session, self._find(session, reference)))

    def signature_image(self, signature_id: int) -> bytes:
        """The stored crop of a document signature (grayscale PNG)."""

        def work(session: Session) -> bytes:
            data = session.scalar(select(DocumentSignature.crop_png).where(DocumentSignature.id == int(signature_id)))
            if data is None:
                raise UnknownDocumentError(f"signature {signature_id}")
            return bytes(data)

        return self.store._read(work)

    def delete_document(self, reference: int | str) -> DocumentInfo:
        """Remove a document (by id or name); its signatures go with it (ON DELETE CASCADE)."""

        def work(session: Session) -> DocumentInfo:
            document = self._find(session, reference)
            info = self._info(session, document)
            session.execute(delete(Document).where(Document.id == document.id))
            return info

        info = self.store._write(work)
        self._invalidate()
        return info

    # --- indexing --------------------------------------------------------------------------

    def _prepare(self, signatures: Sequence[Any], pages: int) -> list[_Crop]:
        crops: list[_Crop] = []
        for index, item in enumerate(signatures):
            where = f"signature #{index}"
            if isinstance(item, SignatureInput):
                page, box, confidence, image = item.page, item.box, item.confidence, item.image
            else:
                try:
                    page, box, confidence, image = item
                except (TypeError, ValueError):
                    raise InvalidDocumentInputError(
                        f"{where}: expected (page, box, confidence, image), got {type(item).__name__}"
                    ) from None
            if isinstance(page, bool) or not isinstance(page, int | np.integer) or not 0 <= int(page) < pages:
                raise InvalidDocumentInputError(f"{where}: page must be an int in [0, {pages}), got {page!r}")
            clean_box = _clean_box(box, where)
            try:
                score = float(confidence)
            except (TypeError, ValueError):
                raise InvalidDocumentInputError(f"{where}: confidence must be a number, got {confidence!r}") from None
            if not 0.0 <= score <= 1.0:
                raise InvalidDocumentInputError(f"{where}: confidence must lie in [0, 1], got {confidence!r}")
            try:
                gray = self.store._load(image)
            except InvalidImageError as exc:
                raise InvalidDocumentInputError(f"{where} ({describe_source(image)}): {exc.reason}") from None
            crops.append(_Crop(int(page), clean_box, score, gray, image_digest(gray), assess(gray).score))
        return crops

    def _identify(self, vectors: np.ndarray) -> list[tuple[int, float] | None]:
        """The closest enrolled writer (id, score) of each embedding; None with no references."""

        def search(session: Session) -> list[tuple[int, float] | None]:
            found: list[tuple[int, float] | None] = []
            for vector in vectors:
                candidates, _, searched = self.store._rank_writers(vector, 1, session=session)
                if not searched:
                    return [None] * len(vectors)  # no writer enrolled: skip a search per signature
                found.append((candidates[0].writer_id, candidates[0].score) if candidates else None)
            return found

        return self.store._read(search)

    def index_document(
        self,
        name: str,
        file_sha256: str,
        pages: int,
        signatures: Sequence[SignatureInput | tuple[int, Box, float, ImageSource]],
        *,
        detector: str | None = None,
        identify: bool = True,
    ) -> IndexedDocument:
        """Store a document with the signatures found on it, in one transaction.

        ``file_sha256`` is the sha256 of the file's bytes: a file indexed before is returned as
        it is (``created=False``), whatever ``name`` is given now. A different file under a name
        already taken raises :class:`DocumentNameTakenError`. Every crop is loaded, checked and
        embedded (batched) before the transaction; a bad one refuses the whole document
        (:class:`InvalidDocumentInputError`). With ``identify`` each signature also records the
        closest enrolled writer and its score (nothing when no writer is enrolled).
        """
        name = _clean_name(name)
        digest = _clean_sha256(file_sha256)
        if isinstance(pages, bool) or not isinstance(pages, int | np.integer) or pages < 1:
            raise InvalidDocumentInputError(f"pages must be an int >= 1, got {pages!r}")
        if isinstance(signatures, str | bytes) or not isinstance(signatures, Sequence):
            raise TypeError("signatures must be a sequence of (page, box, confidence, image)")
        existing = self.lookup(digest)
        if existing is not None:  # before the expensive part: re-indexing costs a lookup
            return IndexedDocument(existing, False)
        store = self.store
        store._read(store._check_compatible)
        crops = self._prepare(signatures, int(pages))
        embeddings = store._embed([crop.gray for crop in crops]) if crops else np.zeros((0, 0), np.float32)
        writers = self._identify(embeddings) if identify and crops else [None] * len(crops)
        pngs = [encode_png(crop.gray) for crop in crops]
        version = store.card.preprocess_version
        model_tag = store.model_tag

        def work(session: Session) -> IndexedDocument:
            meta = store._check_compatible(session, lock=True)
            if crops:
                store._claim_model(session, meta)
            document = session.scalar(select(Document).where(Document.file_sha256 == digest))
            if document is not None:  # indexed meanwhile by someone else
                return IndexedDocument(self._detail(session, document), False)
            if session.scalar(select(Document.id).where(Document.name == name)) is not None:
                raise DocumentNameTakenError(
                    f"another file is already indexed as {name!r}; delete that document first or use another name"
                )
            # Writers deleted since they were identified must not break the foreign key.
            wanted = {found[0] for found in writers if found is not None}
            alive = set(session.scalars(select(Writer.id).where(Writer.id.in_(wanted)))) if wanted else set()
            now = utcnow()
            document = Document(name=name, file_sha256=digest, pages=int(pages), detector=detector, created_at=now)
            session.add(document)
            session.flush()
            for crop, embedding, png, found in zip(crops, embeddings, pngs, writers, strict=True):
                known = found is not None and found[0] in alive
                session.add(
                    DocumentSignature(
                        document_id=document.id,
                        page=crop.page,
                        x0=crop.box[0],
                        y0=crop.box[1],
                        x1=crop.box[2],
                        y1=crop.box[3],
                        confidence=crop.confidence,
                        crop_sha256=crop.digest,
                        embedding_dim=int(embedding.shape[0]),
                        model_tag=model_tag,
                        preprocess_version=version,
                        quality_score=crop.quality_score,
                        writer_id=found[0] if known and found is not None else None,
                        writer_score=float(found[1]) if known and found is not None else None,
                        created_at=now,
                        embedding=embedding_bytes(embedding),
                        crop_png=png,
                    )
                )
            session.flush()
            return IndexedDocument(self._detail(session, document), True)

        # A lost race on the file's sha256 (unique) is retried, and then finds the winner's row.
        result = store._write(work)
        if result.created:
            self._invalidate()
        return result

    def index_file(
        self,
        source: str | os.PathLike[str] | bytes,
        detector: Detector,
        *,
        name: str | None = None,
        labels: Sequence[str] = ("signature",),
        dpi: float | None = None,
        max_pages: int | None = None,
        max_pixels: int | None = None,
        identify: bool = True,
        cleaner: CropCleanerLike | None = None,
    ) -> IndexedDocument:
        """Index a PNG/JPEG/TIFF/PDF file: read its pages one at a time, let ``detector`` find the
        fields, crop those labelled ``labels`` (boxes clipped to the page), clean them with
        ``cleaner`` when given, and store them. A file indexed before is found by its bytes and
        returned without running the detector."""
        from inkproof.document.pages import (
            DEFAULT_DPI,
            DEFAULT_MAX_PAGES,
            InvalidDocumentError,
            iter_pages,
            open_document,
        )

        if isinstance(source, bytes | bytearray):
            data = bytes(source)
            default_name = f"document-{file_sha256(data)[:12]}"
        else:
            path = Path(source)
            if not path.is_file():
                raise InvalidDocumentError(str(path), "file not found")
            data = path.read_bytes()
            default_name = path.name
        digest = file_sha256(data)
        existing = self.lookup(digest)
        if existing is not None:
            return IndexedDocument(existing, False)
        self.store._read(self.store._check_compatible)  # before detecting on every page
        detect = _detect_function(detector)
        wanted = set(labels)
        found: list[SignatureInput] = []
        try:
            document = open_document(
                data,
                dpi=DEFAULT_DPI if dpi is None else dpi,
                max_pages=DEFAULT_MAX_PAGES if max_pages is None else max_pages,
                max_pixels=max_pixels,
            )
            for page in iter_pages(document):
                height, width = page.image.shape
                for field in detect(page.image):
                    if field.label not in wanted:
                        continue
                    x0, y0, x1, y1 = (int(v) for v in field.box)
                    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
                    if x1 - x0 < 2 or y1 - y0 < 2:  # nothing of it on the page
                        continue
                    crop = _cleaned(cleaner, np.ascontiguousarray(page.image[y0:y1, x0:x1]))
                    confidence = min(max(float(field.confidence), 0.0), 1.0)
                    found.append(SignatureInput(page.index, (x0, y0, x1, y1), confidence, crop))
        except InvalidDocumentError as exc:  # name the file, not "<bytes: ...>"
            raise InvalidDocumentError(default_name if name is None else name, exc.reason) from None
        return self.index_document(
            name or default_name, digest, document.pages, found, detector=_detector_name(detector), identify=identify
        )

    def index_entry(
        self,
        path: str | os.PathLike[str],
        detector: Detector,
        *,
        name: str,
        labels: Sequence[str] = ("signature",),
        dpi: float | None = None,
        max_pages: int | None = None,
        max_pixels: int | None = None,
        identify: bool = True,
        cleaner: CropCleanerLike | None = None,
    ) -> FolderEntry:
        """Index one file as :meth:`index_file` does, under ``name``, and report it as a folder
        entry: a file that cannot be read, or whose name is taken by other bytes, is ``failed``
        with its error instead of raising (anything wrong with the store still raises)."""
        from inkproof.document.pages import InvalidDocumentError

        try:
            result = self.index_file(
                path,
                detector,
                name=name,
                labels=labels,
                dpi=dpi,
                max_pages=max_pages,
                max_pixels=max_pixels,
                identify=identify,
                cleaner=cleaner,
            )
        except (InvalidDocumentError, InvalidDocumentInputError, DocumentNameTakenError) as exc:
            return FolderEntry(name, "failed", None, None, 0, 0, str(exc))
        doc = result.document
        status: FolderStatus = "indexed" if result.created else "existing"
        return FolderEntry(name, status, doc.id, doc.name, doc.pages, len(doc.signatures), None)

    def index_folder(
        self,
        folder: str | os.PathLike[str],
        detector: Detector,
        *,
        progress: Callable[[int, int, str], None] | None = None,
        labels: Sequence[str] = ("signature",),
        dpi: float | None = None,
        max_pages: int | None = None,
        max_pixels: int | None = None,
        identify: bool = True,
        cleaner: CropCleanerLike | None = None,
    ) -> FolderIndexResult:
        """Index every PNG/JPEG/TIFF/PDF under ``folder`` (recursively, in path order), each under
        its path relative to the folder. A file that cannot be read, or whose name is taken by
        other bytes, is reported as ``failed`` and the others go on; each document is its own
        transaction. ``progress(done, total, source)`` is called after each file."""
        files = document_files(folder)
        self.store._read(self.store._check_compatible)  # a model mismatch fails the folder at once
        entries: list[FolderEntry] = []
        for done, (path, source) in enumerate(files, start=1):
            entries.append(
                self.index_entry(
                    path,
                    detector,
                    name=source,
                    labels=labels,
                    dpi=dpi,
                    max_pages=max_pages,
                    max_pixels=max_pixels,
                    identify=identify,
                    cleaner=cleaner,
                )
            )
            if progress is not None:
                progress(done, len(files), source)
        return FolderIndexResult(str(Path(folder)), tuple(entries))

    def identify_signatures(self) -> int:
        """Identify every stored document signature again against the enrolled writers (after
        enrolling or deleting writers, or after a reindex); returns how many were updated."""
        store = self.store
        store._read(store._check_compatible)
        dim = store.card.embedding_dim
        cursor, updated = 0, 0
        while True:

            def fetch(session: Session, after: int = cursor) -> list[tuple[int, bytes]]:
                query = (
                    select(DocumentSignature.id, DocumentSignature.embedding)
                    .where(DocumentSignature.id > after, DocumentSignature.model_tag == store.model_tag)
                    .order_by(DocumentSignature.id)
                    .limit(_IDENTIFY_BATCH)
                )
                return [(int(sig_id), bytes(blob)) for sig_id, blob in session.execute(query)]

            rows = store._read(fetch)
            if not rows:
                return updated
            found = self._identify(embedding_matrix([blob for _, blob in rows], dim))

            def write(session: Session, rows: list[tuple[int, bytes]] = rows, found: Any = found) -> None:
                wanted = {item[0] for item in found if item is not None}
                alive = set(session.scalars(select(Writer.id).where(Writer.id.in_(wanted)))) if wanted else set()
                for (sig_id, _), item in zip(rows, found, strict=True):
                    row = session.get(DocumentSignature, sig_id)
                    if row is None:  # its document was deleted meanwhile
                        continue
                    known = item is not None and item[0] in alive
                    row.writer_id = item[0] if known and item is not None else None
                    row.writer_score = float(item[1]) if known and item is not None else None

            store._write(write)
            updated += len(rows)
            cursor = rows[-1][0]

    # --- search ----------------------------------------------------------------------------

    def _load_snapshot(self, session: Session) -> EmbeddingSnapshot:
        store = self.store
        meta = store._check_compatible(session)
        count, max_id = session.execute(select(func.count(DocumentSignature.id), func.max(DocumentSignature.id))).one()
        foreign = session.scalar(
            select(func.count(DocumentSignature.id)).where(
                (DocumentSignature.model_tag != store.model_tag)
                | (DocumentSignature.embedding_dim != store.card.embedding_dim)
            )
        )
        if foreign:
            raise StoreModelMismatchError("(mixed)", store.model_tag)
        # Ids are never reused, so (count, max id) changes with every insert or delete; a finished
        # reindex changes the embeddings version.
        key = (store.model_tag, meta.get(META_EMBEDDINGS_VERSION), int(count or 0), max_id)
        columns = (DocumentSignature.id, DocumentSignature.document_id, DocumentSignature.embedding)
        query = select(*columns).order_by(DocumentSignature.id)
        return self._snapshots.get(key, lambda: snapshot_arrays(session.execute(query), store.card.embedding_dim))

    def search_documents(
        self,
        query: ImageSource,
        *,
        top: int = 10,
        force: IndexKind | None = None,
        cleaner: CropCleanerLike | None = None,
    ) -> DocumentSearchResult:
        """The ``top`` documents most likely signed by the writer of ``query``, each ranked by
        its best-matching signature (reported with its page, box and score, and the decision at
        :meth:`thresholds`). With ``cleaner`` the query is cleaned first, as indexed crops are.

        Exact (numpy) below the store's ``index_threshold`` signatures, approximate (HNSW) above
        it; ``force`` picks one. Product heads score every signature with the head. Reported
        scores are the head's, as in :meth:`~inkproof.store.SignatureStore.identify`.
        """
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ValueError("top must be an int >= 1")
        if force not in (None, "exact", "approximate"):
            raise ValueError(f"force must be None, 'exact' or 'approximate', got {force!r}")
        store = self.store
        verifier = store.verifier
        product = store.card.head not in ("cosine", "euclidean")
        if product and force == "approximate":
            raise ValueError("a product head cannot be indexed; search scores every signature")
        store._read(store._check_compatible)
        accept, reject, source = self.thresholds()
        gray = _cleaned(cleaner, store._load(query))
        digest = image_digest(gray)
        vector = store._embed([gray])[0]
        snapshot = store._read(self._load_snapshot)
        n = len(snapshot.ids)

        def result(matches: tuple[DocumentMatch, ...], kind: str) -> DocumentSearchResult:
            return DocumentSearchResult(matches, kind, n, accept, reject, source, store.model_tag, digest)

        if n == 0:
            return result((), "head" if product else "exact")
        index = None
        if not product:
            index = self._snapshots.index(snapshot, store.card.head, threshold=store.index_threshold, force=force)
        kind = "head" if index is None else index.kind
        rows = best_row_per_owner(snapshot, vector, top, index=index, score=verifier.score_embeddings)
        head_scores = verifier.score_embeddings(np.repeat(vector[None, :], len(rows), axis=0), snapshot.matrix[rows])
        ranked = sorted(
            zip(rows, head_scores, strict=True),
            key=lambda item: (-float(item[1]), int(snapshot.owners[item[0]])),
        )

        def describe(session: Session) -> dict[int, tuple[Document, DocumentSignature, str | None]]:
            signature_ids = [int(snapshot.ids[row]) for row in rows]
            query_ = (
                select(DocumentSignature, Document, Writer.external_id)
                .join(Document, Document.id == DocumentSignature.document_id)
                .outerjoin(Writer, Writer.id == DocumentSignature.writer_id)
                .where(DocumentSignature.id.in_(signature_ids))
            )
            return {sig.id: (doc, sig, writer) for sig, doc, writer in session.execute(query_)}

        found = store._read(describe)
        matches: list[DocumentMatch] = []
        for row, value in ranked:
            signature_id = int(snapshot.ids[row])
            if signature_id not in found:  # deleted since the snapshot
                continue
            document, signature, writer = found[signature_id]
            score = float(value)
            decision: SearchDecision = "match" if score >= accept else ("no_match" if score < reject else "review")
            matches.append(
                DocumentMatch(
                    rank=len(matches) + 1,
                    document_id=document.id,
                    name=document.name,
                    pages=document.pages,
                    signature_id=signature_id,
                    page=signature.page,
                    box=_box_of(signature),
                    score=score,
                    decision=decision,
                    writer_external_id=writer,
                )
            )
        return result(tuple(matches), kind)


__all__ = [
    "CROP_CALIBRATION",
    "DOCUMENT_SUFFIXES",
    "CropCleanerLike",
    "DetectedField",
    "Detector",
    "DocumentDetail",
    "DocumentInfo",
    "DocumentMatch",
    "DocumentNameTakenError",
    "DocumentSearchResult",
    "DocumentSignatureInfo",
    "DocumentStore",
    "FolderEntry",
    "FolderIndexResult",
    "IndexedDocument",
    "InvalidDocumentInputError",
    "PageDetectorLike",
    "PageFields",
    "SignatureInput",
    "UnknownDocumentError",
    "crop_calibration",
    "document_files",
    "file_sha256",
]
