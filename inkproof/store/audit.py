"""The verification log as an audit export (JSON or CSV): one row per claim, no images."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from typing import Any

from inkproof.errors import InkproofError
from inkproof.store.results import ReviewItem

__all__ = ["AUDIT_FIELDS", "AuditFormatError", "parse_since", "rows", "write_log"]

AUDIT_FIELDS = (
    "log_id",
    "created_at",
    "claimed_external_id",
    "writer_id",
    "decision",
    "status",
    "fused_score",
    "threshold",
    "reject_threshold",
    "threshold_source",
    "method",
    "operating_point",
    "model_tag",
    "preprocess_version",
    "query_sha256",
    "has_query_image",
    "reviewer",
    "reviewer_decision",
    "reviewed_at",
    "review_note",
    "reference_ids",
    "reference_scores",
    "reference_used",
    "reference_sha256",
)


_TYPED = frozenset({"claimed_external_id", "reviewer", "review_note"})


class AuditFormatError(InkproofError, ValueError):
    """An export format or date that cannot be used."""


def parse_since(value: str | None) -> dt.datetime | None:
    if value is None or not value.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise AuditFormatError(f"not an ISO date or time: {value!r}") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def rows(items: Sequence[ReviewItem]) -> list[dict[str, Any]]:
    """Flat rows (reference lists joined with ';' so that CSV keeps one row per claim)."""
    out = []
    for item in items:
        values = item.to_dict()
        refs = item.reference_scores
        values["reference_ids"] = ";".join(str(r.reference_id) for r in refs)
        values["reference_scores"] = ";".join(f"{r.score:.6f}" for r in refs)
        values["reference_used"] = ";".join("1" if r.used else "0" for r in refs)
        values["reference_sha256"] = ";".join(r.image_sha256 or "" for r in refs)
        out.append({key: values.get(key) for key in AUDIT_FIELDS})
    return out


def write_log(items: Sequence[ReviewItem], format: str) -> str:
    if format == "json":
        return json.dumps([item.to_dict() for item in items], indent=1, sort_keys=True) + "\n"
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=AUDIT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows(items):
            # User-typed text starting with = + - @ would run as a formula in a spreadsheet: quote it
            # as text (numbers, such as negative scores, are left alone).
            writer.writerow(
                {k: ("'" + v if k in _TYPED and isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in row.items()}
            )
        return buffer.getvalue()
    raise AuditFormatError(f"an export format is json or csv, not {format!r}")
