"""Evidence a document examiner can check for a claim or a pair decision (torch-free: numpy,
Pillow and the ONNX engine): aligned overlays, occlusion sensitivity, measured features and the
provenance needed to reproduce the decision. See :mod:`inkproof.evidence.record`."""

from inkproof.evidence.align import Alignment, align, warp
from inkproof.evidence.features import Features, measure
from inkproof.evidence.record import Comparison, EvidenceRecord, ModelProvenance, Reproduction, compare, pair_evidence
from inkproof.evidence.report import EvidenceFormatError, render_html, render_pdf, write_report

__all__ = [
    "Alignment",
    "Comparison",
    "EvidenceFormatError",
    "EvidenceRecord",
    "Features",
    "ModelProvenance",
    "Reproduction",
    "align",
    "compare",
    "measure",
    "pair_evidence",
    "render_html",
    "render_pdf",
    "warp",
    "write_report",
]
