"""Synthetic scanned document pages with exact ground truth: boxes, handwriting and print masks.

Signature detection, segmentation and cleaning need annotated pages, and the public ones
(Tobacco800) are few, unannotated at pixel level and licensed for research only. This module draws
business letters, contracts and forms from scratch -- nothing comes from a real dataset:

* **Print** is Pillow's built-in scalable font (:func:`PIL.ImageFont.load_default`, no font files):
  letterheads, headings, justified paragraphs of pseudo-text, tables, form lines ("Signature: ___",
  "Date: ___"), page numbers.
* **Handwriting** reuses the pen model of :mod:`inkproof.data.synthetic` (Catmull-Rom strokes with
  pressure, tapers and within-writer variation): signatures from a pool of :data:`WRITER_POOL`
  writers (so a writer recurs across pages), initials (:func:`initials_pieces`, 2-3 capitals in
  the writer's slant) and handwritten dates (:func:`date_pieces`, digit glyph templates).
* **Fields** (:data:`FIELD_CLASSES`) are boxed: signatures, initials, handwritten dates, redaction
  bars and logos (emblem + company name). Stamps and white-out are clutter without a box; so are
  the optional hard negatives (``PageConfig.hard_negatives``, :mod:`.negatives`): handwritten notes,
  figures and pen marks in free space and a script wordmark in the letterhead band.
* **Scan effects** (``PageConfig.noise``): skew up to 1 degree, blur, sensor noise, dust, the odd
  bilevel (fax-like) page and a JPEG round trip.

Every object is drawn into its own coverage patch, composited by darkening (min) over textured
paper, and carried through the same geometric transform as the page. Boxes are recomputed from each
object's own transformed mask, so they stay tight and exact after the skew; the handwriting mask
is the union of those masks. Page ``i`` draws its random numbers from
``np.random.SeedSequence([config.seed, i])``: it is the same whatever was generated before.

The code is split by concern: :mod:`.config` (what a page is configured with and carries),
:mod:`.printing` (printed text), :mod:`.handwriting` (signatures, initials, dates), :mod:`.scan`
(paper and scan degradation), :mod:`.negatives` (unboxed handwriting and wordmarks),
:mod:`.layout` (the page builder and :func:`render_page`),
:mod:`.cleaner_examples` (the cleaner's training examples) and :mod:`.files` (datasets on disk).
"""

from __future__ import annotations

from inkproof.document.synthetic.cleaner_examples import _masked_alpha, cleaner_example, crop_signature_pair
from inkproof.document.synthetic.config import (
    FIELD_CLASSES,
    FIELD_COLOURS,
    HANDWRITING_CLASSES,
    MASK_CLASSES,
    MASK_THRESHOLD,
    WRITER_POOL,
    FieldBox,
    PageConfig,
    SyntheticPage,
    page_writer_id,
)
from inkproof.document.synthetic.files import contact_sheet, write_detection_dataset
from inkproof.document.synthetic.handwriting import date_pieces, initials_pieces, render_date, render_initials
from inkproof.document.synthetic.layout import render_page

__all__ = [
    "FIELD_CLASSES",
    "FIELD_COLOURS",
    "HANDWRITING_CLASSES",
    "MASK_CLASSES",
    "MASK_THRESHOLD",
    "WRITER_POOL",
    "FieldBox",
    "PageConfig",
    "SyntheticPage",
    "_masked_alpha",
    "cleaner_example",
    "contact_sheet",
    "crop_signature_pair",
    "date_pieces",
    "initials_pieces",
    "page_writer_id",
    "render_date",
    "render_initials",
    "render_page",
    "write_detection_dataset",
]
