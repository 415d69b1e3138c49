"""Batch jobs on Ray Data: ``inkproof batch embed``, ``batch verify``, ``batch verify-claims`` and
``batch index-documents``.

A job reads a manifest (CSV or Parquet) and runs in stages, each cut into partitions by position
in the manifest, so the same manifest always gives the same partitions (:mod:`.jobs`: embed and
verify; :mod:`.claims`: claims against an enrollment store; :mod:`.documents`: scanned documents
indexed into a store).

Tasks run in Ray actors (:class:`ray.data.ActorPoolStrategy` via ``map_batches``), each holding one
torch-free :class:`inkproof.Verifier` loaded once. Every partition is written as a Parquet file
(a sibling renamed over it) followed by a ``.done`` marker (written the same way); a partition
counts as finished only when both exist, so a job killed at any point (even ``kill -9``) resumes
with the partitions it lacks and never recomputes finished ones (:mod:`.partitions`). ``_job.json``
records what the folder was made from (manifest digest, partition size, model, ...) and a
different job is refused in it.

Modules point down: ``jobs``, ``claims`` and ``documents`` over ``partitions`` and ``manifest``,
both over ``common``.
Ray, pyarrow and pandas are imported inside functions only: ``import inkproof`` stays light.
"""

from inkproof.batch.claims import CLAIM_COLUMNS, PARTITION_CLAIMS, claim_key, read_claims, run_claims
from inkproof.batch.common import BatchJobError, BatchSummary, StageSummary
from inkproof.batch.documents import DOCUMENT_COLUMNS, PARTITION_DOCUMENTS, read_indexed, run_index_documents
from inkproof.batch.jobs import (
    PAIR_COLUMNS,
    PARTITION_IMAGES,
    PARTITION_PAIRS,
    read_embeddings,
    read_scores,
    run_batch,
)
from inkproof.batch.manifest import (
    ClaimsManifest,
    DocumentsManifest,
    Manifest,
    read_claims_manifest,
    read_documents_manifest,
    read_manifest,
    write_synthetic_manifest,
)
from inkproof.batch.partitions import JOB_FILE, partition_done, partitions, write_partition

__all__ = [
    "CLAIM_COLUMNS",
    "DOCUMENT_COLUMNS",
    "JOB_FILE",
    "PAIR_COLUMNS",
    "PARTITION_CLAIMS",
    "PARTITION_DOCUMENTS",
    "PARTITION_IMAGES",
    "PARTITION_PAIRS",
    "BatchJobError",
    "BatchSummary",
    "ClaimsManifest",
    "DocumentsManifest",
    "Manifest",
    "StageSummary",
    "claim_key",
    "partition_done",
    "partitions",
    "read_claims",
    "read_claims_manifest",
    "read_documents_manifest",
    "read_embeddings",
    "read_indexed",
    "read_manifest",
    "read_scores",
    "run_batch",
    "run_claims",
    "run_index_documents",
    "write_partition",
    "write_synthetic_manifest",
]
