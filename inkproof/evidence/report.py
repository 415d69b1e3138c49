"""The evidence as a self-contained HTML page (images inline) or a PDF (Pillow-drawn pages)."""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from inkproof.errors import InkproofError
from inkproof.evidence.record import EvidenceRecord, png_data_uri

__all__ = ["EvidenceFormatError", "render_html", "render_pdf", "write_report"]

_FEATURES = (
    ("aspect_ratio", "aspect ratio (w/h)"),
    ("slant_deg", "slant (deg)"),
    ("ink_density", "ink density"),
    ("components", "connected pieces"),
    ("upper_share", "ink above middle"),
    ("left_share", "ink left of middle"),
    ("centre_x", "ink centre x"),
    ("centre_y", "ink centre y"),
)


class EvidenceFormatError(InkproofError, ValueError):
    """A report path whose format is neither .html nor .pdf."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _provenance(record: EvidenceRecord) -> list[tuple[str, str]]:
    rows = [
        ("decision", record.decision),
        ("score", f"{record.score:.4f}"),
        ("accept threshold", f"{record.accept_threshold:.4f}"),
        ("reject threshold", _fmt(record.reject_threshold)),
        ("threshold source", record.threshold_source),
        ("method", record.method),
        ("operating point", _fmt(record.operating_point)),
        ("model", f"{record.model.name} ({record.model.format}, head {record.model.head})"),
        ("model tag", record.model.tag),
        ("embedder sha256", record.model.embedder_sha256),
        ("preprocessing version", record.model.preprocess_version),
        ("query sha256", record.query_sha256),
        ("evidence built", record.created_at),
    ]
    if record.log_id is not None:
        rows[0:0] = [("log id", str(record.log_id)), ("claimed writer", _fmt(record.claimed_external_id))]
        rows.append(("decided at", _fmt(record.decided_at)))
    if record.review:
        rows.append(("review", ", ".join(f"{k}: {_fmt(v)}" for k, v in record.review.items())))
    if record.reproduction is not None:
        rep = record.reproduction
        rows.append(
            ("reproduced from the log", ("yes" if rep.matches else "NO") + (f" ({rep.note})" if rep.note else ""))
        )
    return rows


_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#1b1b1b;max-width:1100px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:14px}
th{background:#f2f2f2}.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
figure{display:inline-block;margin:6px 10px 6px 0;vertical-align:top}figcaption{font-size:12px;color:#555}
img{border:1px solid #ddd;image-rendering:auto}.genuine{color:#0a6b2a}.forgery{color:#a4161a}.review{color:#9a6700}
section{border-top:1px solid #ddd;margin-top:16px;padding-top:8px}
"""


def render_html(record: EvidenceRecord) -> str:
    """One self-contained page: no external requests (images are data URIs)."""
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Signature evidence: {e(record.decision)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Signature evidence <span class='{e(record.decision)}'>{e(record.decision)}</span></h1>",
        "<table>",
    ]
    for key, value in _provenance(record):
        parts.append(f"<tr><th>{e(key)}</th><td class='mono'>{e(value)}</td></tr>")
    parts.append("</table>")
    if record.query_image:
        parts.append(
            f"<figure><img alt='query' src='{png_data_uri(record.query_image)}'><figcaption>query</figcaption></figure>"
        )
    else:
        parts.append("<p>The query image was not kept: the scores and provenance above are all the log holds.</p>")
    parts.append("<h2>Measured features</h2><table><tr><th>feature</th><th>query</th>")
    for i, c in enumerate(record.comparisons):
        parts.append(f"<th>reference {e(_fmt(c.reference_id if c.reference_id is not None else i + 1))}</th>")
    parts.append("</tr>")
    query_features = record.query_features.to_dict() if record.query_features is not None else {}
    for key, label in _FEATURES:
        cells = "".join(f"<td>{e(_fmt(c.features.to_dict()[key]))}</td>" for c in record.comparisons)
        parts.append(f"<tr><td>{e(label)}</td><td>{e(_fmt(query_features.get(key)))}</td>{cells}</tr>")
    parts.append("</table>")
    for i, c in enumerate(record.comparisons):
        name = c.reference_id if c.reference_id is not None else i + 1
        a = c.alignment
        parts.append(
            f"<section><h2>Reference {e(str(name))}: score {c.score:.4f}{'' if c.used else ' (flagged, not used)'}</h2>"
            f"<p class='mono'>sha256 {e(c.reference_sha256)}</p>"
            f"<p>Alignment: rotation {a.angle_deg:.1f} deg, scale {a.scale:.3f}, shift ({a.dx:.1f}, {a.dy:.1f}) px; "
            f"mean ink distance {a.chamfer_before:.2f} -> {a.chamfer_after:.2f} px. "
            f"Sensitivity: {c.sensitivity.patches} patches of {c.sensitivity.patch} px; blanking one raises the "
            f"score by up to {c.sensitivity.max_raise:.4f}, lowers it by up to {c.sensitivity.max_drop:.4f}.</p>"
        )
        for key, caption in (
            ("side_by_side", "query (left) and reference (right), as the model saw them"),
            ("overlay", "aligned overlay: query red, reference blue, shared ink black"),
            ("sensitivity", "red: regions that count against the match; green: regions that support it"),
        ):
            parts.append(
                f"<figure><img alt='{e(key)}' src='{png_data_uri(c.images[key])}'>"
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
        parts.append("</section>")
    record_json = json.dumps(record.to_dict(images=False), indent=1, sort_keys=True)
    parts.append(f"<section><h2>Record</h2><pre class='mono'>{e(record_json)}</pre></section></body></html>")
    return "".join(parts)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def render_pdf(record: EvidenceRecord) -> bytes:
    """A4 pages at 100 dpi drawn with Pillow: provenance and features, then one page per reference."""
    width, height, margin = 827, 1169, 50
    title, body, small = _font(22), _font(13), _font(11)
    pages: list[Image.Image] = []

    def new_page() -> tuple[Image.Image, ImageDraw.ImageDraw]:
        page = Image.new("RGB", (width, height), "white")
        pages.append(page)
        return page, ImageDraw.Draw(page)

    page, draw = new_page()
    y = margin
    draw.text((margin, y), f"Signature evidence: {record.decision}", font=title, fill="black")
    y += 40
    for key, value in _provenance(record):
        draw.text((margin, y), f"{key}:", font=body, fill="#333")
        # Long values (hashes, a reviewer's note) wrap rather than run off the page.
        for start in range(0, max(len(value), 1), 90):
            draw.text(
                (margin + 190, y), value[start : start + 90], font=small if len(value) > 50 else body, fill="black"
            )
            y += 20 if start + 90 >= len(value) else 15
    y += 10
    if record.query_image:
        query = Image.open(io.BytesIO(record.query_image))
        page.paste(query, (margin, y))
        y += query.height + 20
    else:
        draw.text((margin, y), "The query image was not kept: scores and provenance only.", font=body, fill="black")
        y += 30
    heads = ["query"] + [
        f"ref {c.reference_id if c.reference_id is not None else i + 1}" for i, c in enumerate(record.comparisons[:6])
    ]
    draw.text((margin, y), "feature", font=body, fill="black")
    for j, head in enumerate(heads):
        draw.text((margin + 170 + 85 * j, y), head, font=body, fill="black")
    y += 20
    query_features = record.query_features.to_dict() if record.query_features is not None else {}
    for key, label in _FEATURES:
        values = [query_features.get(key)] + [c.features.to_dict()[key] for c in record.comparisons[:6]]
        draw.text((margin, y), label, font=small, fill="black")
        for j, cell in enumerate(values):
            draw.text((margin + 170 + 85 * j, y), _fmt(cell)[:7], font=small, fill="black")
        y += 17
    for i, c in enumerate(record.comparisons):
        page, draw = new_page()
        y = margin
        name = c.reference_id if c.reference_id is not None else i + 1
        draw.text(
            (margin, y),
            f"Reference {name}: score {c.score:.4f}{'' if c.used else ' (not used)'}",
            font=title,
            fill="black",
        )
        y += 34
        draw.text((margin, y), f"sha256 {c.reference_sha256}", font=small, fill="#333")
        y += 18
        a = c.alignment
        draw.text(
            (margin, y),
            f"alignment: rotation {a.angle_deg:.1f} deg, scale {a.scale:.3f}, shift ({a.dx:.1f}, {a.dy:.1f}) px; "
            f"ink distance {a.chamfer_before:.2f} -> {a.chamfer_after:.2f} px",
            font=small,
            fill="#333",
        )
        y += 24
        for key, caption in (
            ("side_by_side", "query (left) and reference (right)"),
            ("overlay", "aligned overlay: query red, reference blue, shared ink black"),
            ("sensitivity", "red: counts against the match; green: supports it"),
        ):
            image = Image.open(io.BytesIO(c.images[key])).convert("RGB")
            if image.width > width - 2 * margin:
                image = image.resize((width - 2 * margin, round(image.height * (width - 2 * margin) / image.width)))
            page.paste(image, (margin, y))
            y += image.height + 4
            draw.text((margin, y), caption, font=small, fill="#555")
            y += 24
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=100.0)
    return buffer.getvalue()


def write_report(record: EvidenceRecord, path: str | Path) -> Path:
    """Write ``record`` as HTML or PDF, chosen by the suffix of ``path``."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix in (".html", ".htm"):
        target.write_text(render_html(record), encoding="utf-8")
    elif suffix == ".pdf":
        target.write_bytes(render_pdf(record))
    else:
        raise EvidenceFormatError(f"a report is .html or .pdf, not {target.name!r}")
    return target
