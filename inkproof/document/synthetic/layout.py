"""Page layout: letters, contracts and forms with signature blocks, fields, stamps and redactions,
composited and scanned (:func:`render_page`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from inkproof.data.synthetic import WriterStyle, _Piece
from inkproof.document.synthetic.config import (
    _KIND_DATES,
    _REFERENCE_WIDTH,
    F32,
    FIELD_CLASSES,
    HANDWRITING_CLASSES,
    MASK_THRESHOLD,
    WRITER_POOL,
    Box,
    FieldBox,
    Font,
    Mask,
    PageConfig,
    SyntheticPage,
    _check_int,
    page_writer_id,
)
from inkproof.document.synthetic.handwriting import (
    _bbox,
    _extent,
    _ink_alpha,
    _signature_pieces,
    _style,
    _writer_rng,
    date_pieces,
    initials_pieces,
)
from inkproof.document.synthetic.negatives import draw_hard_negatives
from inkproof.document.synthetic.printing import (
    _CLOSINGS,
    _FORM_TITLES,
    _HEADINGS,
    _JOB_TITLES,
    _MONTHS,
    _STAMP_WORDS,
    _TITLES,
    _WORDS,
    _amount,
    _company,
    _font,
    _paste_text,
    _person,
    _pick,
    _printed_date,
    _proper,
    _prose,
    _word_length,
)
from inkproof.document.synthetic.scan import _Affine, _darken, _paper, _scan

# --------------------------------------------------------------------------------------------
# Page layout
# --------------------------------------------------------------------------------------------


@dataclass
class _Patch:
    """An object drawn into its own coverage patch; its box comes from this patch alone."""

    label: str  # a FIELD_CLASSES label, or "" for clutter without a box (stamps)
    writer: str | None
    x: int
    y: int
    alpha: F32
    tone: float
    level: float = MASK_THRESHOLD  # coverage at which a pixel belongs to the object's mask
    handwritten: bool | None = None  # for unboxed objects (label ""): None means print

    @property
    def handwriting(self) -> bool:
        return self.label in HANDWRITING_CLASSES or bool(self.handwritten)

    def ink_box(self) -> Box:
        box = _bbox(self.alpha >= self.level)
        if box is None:
            return self.x, self.y, self.x, self.y
        return box[0] + self.x, box[1] + self.y, box[2] + self.x, box[3] + self.y


@dataclass
class _TextLine:
    """A printed line; ``words`` are (x0, x1) spans, for redactions and white-out."""

    top: int
    bottom: int
    words: list[tuple[int, int]]


@dataclass
class _Block:
    """A signature block: where a signature goes (over ``line_y`` between x0 and x1) and its date."""

    x0: int
    x1: int
    line_y: int
    col_x0: int
    col_x1: int
    label_x: int  # where printed text left of the signature line starts (overlap target)
    has_line: bool
    date_slot: tuple[int, int, int] | None  # x0, x1, line y of a "Date: ____" line
    below_y: int  # first free y below the block's printed text


@dataclass(frozen=True)
class _ObjectMask:
    """One field's own mask after the scan transform, placed at (x, y) on the page (for tests)."""

    field: FieldBox
    x: int
    y: int
    mask: Mask


class _PageBuilder:
    """Lays out one page: print goes to a page-size coverage layer, objects to their own patches."""

    def __init__(self, index: int, config: PageConfig) -> None:
        self.config = config
        self.index = index
        self.rng = np.random.default_rng(np.random.SeedSequence([config.seed, index]))
        self.W, self.H = config.width, config.height
        self.u = config.width / _REFERENCE_WIDTH
        self.layer = Image.new("L", (self.W, self.H), 0)
        self.draw = ImageDraw.Draw(self.layer)
        self.patches: list[_Patch] = []
        self.lines: list[_TextLine] = []
        self.whiteouts: list[Box] = []
        rng = self.rng
        self.left = self.px(rng.uniform(95, 160))
        self.right = self.W - self.px(rng.uniform(95, 160))
        self.top = self.px(rng.uniform(60, 110))
        self.bottom = self.H - self.px(rng.uniform(60, 100))
        self.body_size = rng.uniform(16, 21)
        self.line_factor = rng.uniform(1.3, 1.6)
        self.rule = max(1, self.px(rng.uniform(1.0, 2.4)))
        self.closing = _pick(rng, _CLOSINGS)
        self.print_tone = float(rng.uniform(5, 60))
        # One marker per document, darker than the print: under min compositing nothing shows through.
        self.redaction_tone = self.print_tone * float(rng.uniform(0.0, 0.6))

    # ---- units and text -------------------------------------------------------------------

    def px(self, value: float) -> int:
        return round(value * self.u)

    def font(self, size: float) -> Font:
        return _font(max(6, round(size * self.u)))

    def line_height(self, size: float) -> int:
        return self.px(size * self.line_factor)

    def text(self, x: float, y: float, s: str, size: float, *, bold: bool = False, record: bool = False) -> int:
        """Draw ``s`` with its top-left at (x, y); returns the right end. ``record``: redaction candidate."""
        spans = _paste_text(self.layer, x, y, s, max(6, round(size * self.u)), bold)
        if record and spans:
            top, bottom = self._vertical(self.font(size), y)
            self.lines.append(_TextLine(top, bottom, spans))
        return spans[-1][1] if spans else round(x)

    def measure(self, s: str, size: float, *, bold: bool = False) -> float:
        return _word_length(max(6, round(size * self.u)), s) + (2 if bold else 0)

    @staticmethod
    def _vertical(font: Font, y: float) -> tuple[int, int]:
        box = font.getbbox("Hgjy")
        return round(y + box[1]), round(y + box[3])

    def hline(self, x0: float, x1: float, y: float, width: int | None = None) -> None:
        w = self.rule if width is None else width
        self.draw.rectangle((round(x0), round(y), round(x1), round(y) + w - 1), fill=255)

    def paragraph(self, y: int, x0: int, x1: int, limit: int, lines: int, *, justify: bool, size: float) -> int:
        """Fill up to ``lines`` lines of prose between x0 and x1 from y; returns the y after it."""
        rng = self.rng
        font = self.font(size)
        px_size = max(6, round(size * self.u))
        space = _word_length(px_size, " ")
        lh = self.line_height(size)
        width = x1 - x0
        words = iter(_prose(rng, lines * 40))  # more than enough: lines hold <= ~25 words
        pending: str | None = None
        indent = self.px(rng.choice([0.0, 0.0, 30.0]))
        for i in range(lines):
            if y + lh > limit:
                break
            last = i == lines - 1
            target = width * rng.uniform(0.25, 0.9) if last else width
            start = x0 + (indent if i == 0 else 0)
            line: list[tuple[str, float]] = []
            used = float(start - x0)
            while True:
                word = pending if pending is not None else next(words)
                pending = None
                wl = _word_length(px_size, word)
                need = wl + (space if line else 0.0)
                if line and used + need > target:
                    pending = word
                    break
                line.append((word, wl))
                used += need
                if used >= target:
                    break
            spans: list[tuple[int, int]] = []
            gap = space
            if justify and not last and len(line) > 1:
                gap = (x1 - start - sum(w for _, w in line)) / (len(line) - 1)
            x = float(start)
            for word, wl in line:
                _paste_text(self.layer, x, y, word, px_size)
                spans.append((round(x), round(x + wl)))
                x += wl + gap
            top, bottom = self._vertical(font, y)
            self.lines.append(_TextLine(top, bottom, spans))
            y += lh
        return y

    # ---- letterhead and logo --------------------------------------------------------------

    def logo_patch(self, company: str) -> _Patch:
        """A geometric emblem plus the company name (and maybe a tagline): one 'logo' object."""
        rng = self.rng
        e = self.px(rng.uniform(50, 95))
        name_size = rng.uniform(24, 38)
        name_font = self.font(name_size)
        name_w = int(name_font.getlength(company)) + 4
        tagline = f"{_pick(rng, _WORDS).capitalize()} {_pick(rng, _WORDS)} {_pick(rng, _WORDS)}"
        tag_size = name_size * 0.45
        has_tag = rng.random() < 0.4
        stacked = rng.random() < 0.3
        name_box = name_font.getbbox(company)
        name_h = int(name_box[3]) + 2
        tag_h = self.px(tag_size * 1.4) if has_tag else 0
        gap = self.px(rng.uniform(8, 20))
        if stacked:
            w = max(e, name_w, int(self.measure(tagline, tag_size)) + 2) + 4
            h = e + gap + name_h + tag_h + 4
            ex, ey, tx, ty = (w - e) // 2, 2, (w - name_w) // 2, e + gap
        else:
            w = e + gap + max(name_w, int(self.measure(tagline, tag_size)) + 2) + 4
            h = max(e, name_h + tag_h) + 4
            ex, ey, tx, ty = 2, (h - e) // 2, e + gap, (h - name_h - tag_h) // 2
        img = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(img)
        fill = int(rng.choice([255, 255, int(rng.integers(120, 230))]))
        kind = int(rng.integers(6))
        box = (ex, ey, ex + e - 1, ey + e - 1)
        thick = max(2, e // 9)
        if kind == 0:  # disc with a knocked-out initial
            d.ellipse(box, fill=fill)
            f = _font(max(8, int(e * 0.6)))
            d.text((ex + e / 2, ey + e / 2), company[0], fill=0, font=f, anchor="mm")
        elif kind == 1:  # ring around a square
            d.ellipse(box, outline=fill, width=thick)
            q = e // 4
            d.rectangle((ex + q + thick, ey + q + thick, ex + e - q - thick, ey + e - q - thick), fill=fill)
        elif kind == 2:  # two overlapping triangles
            d.polygon([(ex, ey + e - 1), (ex + e * 0.55, ey), (ex + e * 0.75, ey + e - 1)], fill=fill)
            d.polygon([(ex + e * 0.35, ey + e - 1), (ex + e * 0.7, ey + e * 0.3), (ex + e - 1, ey + e - 1)], fill=fill)
        elif kind == 3:  # checkerboard of squares
            half = e // 2
            for i, j in ((0, 0), (1, 1), (0, 1)):
                if i == 0 and j == 1 and rng.random() < 0.5:
                    continue
                d.rectangle(
                    (ex + i * half, ey + j * half, ex + i * half + half - 3, ey + j * half + half - 3), fill=fill
                )
        elif kind == 4:  # diamond with an inner outline
            c = (ex + e / 2, ey + e / 2)
            r = e / 2
            d.polygon([(c[0], c[1] - r), (c[0] + r, c[1]), (c[0], c[1] + r), (c[0] - r, c[1])], fill=fill)
            r2 = r * 0.5
            d.polygon([(c[0], c[1] - r2), (c[0] + r2, c[1]), (c[0], c[1] + r2), (c[0] - r2, c[1])], fill=0)
        else:  # rising bars
            n = int(rng.integers(3, 5))
            bw = e / (n * 1.5)
            for i in range(n):
                bh = e * (0.35 + 0.65 * (i + 1) / n)
                x = ex + i * bw * 1.5
                d.rectangle((x, ey + e - bh, x + bw, ey + e - 1), fill=fill)
        d.text(
            (tx, ty), company, fill=255, font=name_font, stroke_width=1 if rng.random() < 0.6 else 0, stroke_fill=255
        )
        if has_tag:
            d.text((tx, ty + name_h), tagline, fill=255, font=self.font(tag_size))
        alpha = np.asarray(img, dtype=np.float32) * np.float32(1 / 255)
        return _Patch("logo", None, 0, 0, alpha, float(rng.uniform(0, 90)))

    def letterhead(self, company: str) -> int:
        rng = self.rng
        y = self.top
        small = rng.uniform(11, 14)
        address = [
            f"{int(rng.integers(1, 9999))} {_proper(rng)} {_pick(rng, ('Street', 'Avenue', 'Road', 'Boulevard'))}",
            f"{_proper(rng)}, {chr(65 + int(rng.integers(26)))}{chr(65 + int(rng.integers(26)))} "
            f"{int(rng.integers(10000, 99999))}",
            f"Tel. ({int(rng.integers(200, 999))}) {int(rng.integers(200, 999))}-{int(rng.integers(1000, 9999))}",
        ]
        bottom = y
        if rng.random() < self.config.logo_probability:
            patch = self.logo_patch(company)
            h, w = patch.alpha.shape
            where = rng.choice(["left", "center", "right"], p=[0.5, 0.25, 0.25])
            x = {"left": self.left, "center": (self.W - w) // 2, "right": self.right - w}[str(where)]
            patch.x, patch.y = x, y
            self.patches.append(patch)
            bottom = y + h
            lh = self.line_height(small)
            if where == "center":
                ay = bottom + self.px(8)
                for line in address[: int(rng.integers(1, 3))]:
                    self.text((self.W - self.measure(line, small)) / 2, ay, line, small)
                    ay += lh
                bottom = ay
            else:
                ay = y + self.px(4)
                for line in address:
                    ax = self.right - self.measure(line, small) if where == "left" else self.left
                    self.text(ax, ay, line, small)
                    ay += lh
                bottom = max(bottom, ay)
        elif rng.random() < 0.6:  # a plain address header, no emblem
            lh = self.line_height(small)
            for line in address:
                self.text(self.right - self.measure(line, small), y, line, small)
                y += lh
            bottom = y
        if rng.random() < 0.6 and bottom > self.top:
            bottom += self.px(10)
            self.hline(self.left, self.right, bottom)
        return bottom + self.px(rng.uniform(25, 50))

    # ---- bodies ---------------------------------------------------------------------------

    def letter_body(self, y: int, limit: int) -> int:
        rng = self.rng
        size = self.body_size
        lh = self.line_height(size)
        date = _printed_date(rng)
        x = self.right - self.measure(date, size) if rng.random() < 0.3 else self.left
        self.text(x, y, date, size, record=True)
        y += 2 * lh
        recipient = [
            _person(rng),
            _pick(rng, _JOB_TITLES),
            _company(rng),
            f"{int(rng.integers(1, 999))} {_proper(rng)} Street",
            f"{_proper(rng)}, {int(rng.integers(10000, 99999))}",
        ]
        for line in recipient[: int(rng.integers(3, 6))]:
            if y + lh > limit:
                return y
            self.text(self.left, y, line, size, record=True)
            y += lh
        y += lh
        if rng.random() < 0.6 and y + lh < limit:
            self.text(
                self.left, y, f"Re: {' '.join(_prose(rng, int(rng.integers(3, 7))))}".rstrip(".,"), size, bold=True
            )
            y += int(lh * 1.5)
        if y + lh < limit:
            self.text(self.left, y, f"Dear {_pick(rng, ('Mr.', 'Ms.', 'Dr.'))} {_proper(rng)}:", size, record=True)
            y += int(lh * 1.5)
        justify = rng.random() < 0.5
        while y + 2 * lh < limit:
            y = self.paragraph(y, self.left, self.right, limit, int(rng.integers(2, 8)), justify=justify, size=size)
            y += int(lh * rng.uniform(0.5, 1.0))
            if rng.random() < 0.12:
                break  # letters are often short
        return y

    def contract_body(self, y: int, limit: int) -> int:
        rng = self.rng
        size = self.body_size * rng.uniform(0.9, 1.0)
        lh = self.line_height(size)
        title = _pick(rng, _TITLES)
        tsize = rng.uniform(22, 30)
        self.text((self.W - self.measure(title, tsize, bold=True)) / 2, y, title, tsize, bold=True)
        y += self.line_height(tsize) + self.px(10)
        if rng.random() < 0.5:
            sub = f"Agreement No. {int(rng.integers(1990, 2026))}-{int(rng.integers(1, 999)):03d}"
            self.text((self.W - self.measure(sub, size)) / 2, y, sub, size, record=True)
            y += 2 * lh
        y = self.paragraph(y, self.left, self.right, limit, int(rng.integers(2, 5)), justify=True, size=size)
        y += lh // 2
        section = 1
        while y + 3 * lh < limit:
            heading = f"{section}. {_pick(rng, _HEADINGS)}"
            self.text(self.left, y, heading, size, bold=True)
            y += int(lh * 1.2)
            indent = self.px(30) if rng.random() < 0.3 else 0
            y = self.paragraph(
                y, self.left + indent, self.right, limit, int(rng.integers(2, 7)), justify=True, size=size
            )
            y += lh // 2
            section += 1
        return y

    def field_row(self, x: float, y: int, x1: float, label: str, value: str | None, size: float) -> None:
        """``Label: ______`` with an optional typed value sitting on the line."""
        right = self.text(x, y, label, size, record=True)
        font = self.font(size)
        line_y = self._vertical(font, y)[1] - self.px(2)
        self.hline(right + self.px(6), x1, line_y, width=1)
        if value:
            self.text(right + self.px(14), y, value, size, record=True)

    def table(self, y: int, limit: int, size: float) -> int:
        rng = self.rng
        rows = int(rng.integers(3, 9))
        cols = int(rng.integers(2, 6))
        row_h = int(self.line_height(size) * 1.35)
        rows = min(rows, (limit - y) // row_h - 1)
        if rows < 2:
            return y
        weights = rng.uniform(0.6, 1.6, cols)
        edges = self.left + np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * (self.right - self.left)
        heads = ("Item", "Description", "Qty", "Unit Price", "Amount", "Date", "Ref.", "Account", "Code")
        order = rng.permutation(len(heads))  # distinct column headings
        pad = self.px(6)
        for r in range(rows + 1):
            self.hline(self.left, self.right, y + r * row_h, width=max(1, self.rule - (r not in (0, 1, rows))))
        for x in edges:
            self.draw.rectangle((round(x), y, round(x) + self.rule - 1, y + rows * row_h), fill=255)
        for r in range(rows):
            for c in range(cols):
                if r == 0:
                    s = heads[int(order[c])]
                elif c == 0:
                    s = f"{int(rng.integers(1, 999)):03d}"
                elif rng.random() < 0.5:
                    s = _amount(rng)
                else:
                    s = " ".join(_prose(rng, int(rng.integers(1, 4)))).rstrip(".,")
                while len(s) > 1 and self.measure(s, size, bold=r == 0) > edges[c + 1] - edges[c] - 2 * pad:
                    s = s[:-1]
                self.text(edges[c] + pad, y + r * row_h + pad, s, size, bold=r == 0, record=r > 0)
        return y + rows * row_h + self.px(20)

    def form_body(self, y: int, limit: int) -> int:
        rng = self.rng
        size = self.body_size * rng.uniform(0.85, 1.0)
        lh = self.line_height(size)
        title = _pick(rng, _FORM_TITLES)
        tsize = rng.uniform(22, 28)
        centered = rng.random() < 0.5
        self.text(
            (self.W - self.measure(title, tsize, bold=True)) / 2 if centered else self.left, y, title, tsize, bold=True
        )
        if rng.random() < 0.6:
            ref = (
                f"Form {int(rng.integers(10, 99))}-{chr(65 + int(rng.integers(26)))} (rev. {int(rng.integers(1, 13))}/"
            )
            ref += f"{int(rng.integers(88, 99))})"
            self.text(self.right - self.measure(ref, size * 0.7), y, ref, size * 0.7)
        y += self.line_height(tsize) + lh
        labels = iter(
            rng.permutation(
                ["Name", "Department", "Address", "Account No.", "Phone", "Employee ID", "Project", "Amount"]
            )
        )
        for _ in range(int(rng.integers(2, 5))):
            if y + lh > limit:
                return y
            two = rng.random() < 0.5
            mid = (self.left + self.right) / 2
            value = _person(rng) if rng.random() < 0.5 else (_amount(rng) if rng.random() < 0.3 else None)
            self.field_row(self.left, y, mid - self.px(20) if two else self.right, f"{next(labels)}:", value, size)
            if two:
                self.field_row(mid, y, self.right, f"{next(labels)}:", None, size)
            y += int(lh * 1.5)
        y += lh // 2
        y = self.table(y, limit, size * 0.9)
        if rng.random() < 0.6 and y + 2 * lh < limit:
            box = self.px(size * 0.8)
            x = float(self.left)
            for _ in range(int(rng.integers(2, 5))):
                label = " ".join(_prose(rng, int(rng.integers(1, 3)))).rstrip(".,").capitalize()
                top = y + self.px(3)
                self.draw.rectangle(
                    (round(x), top, round(x) + box, top + box), outline=255, width=max(1, self.rule - 1)
                )
                if rng.random() < 0.4:  # a typed X
                    self.draw.line((round(x) + 2, top + 2, round(x) + box - 2, top + box - 2), fill=255, width=2)
                    self.draw.line((round(x) + 2, top + box - 2, round(x) + box - 2, top + 2), fill=255, width=2)
                x = self.text(x + box + self.px(8), y, label, size) + self.px(30)
                if x > self.right - self.px(150):
                    break
            y += 2 * lh
        while y + 2 * lh < limit:
            y = self.paragraph(
                y, self.left, self.right, limit, int(rng.integers(2, 5)), justify=False, size=size * 0.85
            )
            y += lh // 2
            if rng.random() < 0.3:
                break
        return y

    # ---- signature blocks -----------------------------------------------------------------

    def plan_blocks(self, n_signatures: int, available: int, letter: bool) -> tuple[int, int, int, str]:
        """(blocks, columns, block height, variant) so that the blocks fit in ``available`` pixels."""
        rng = self.rng
        blocks = n_signatures
        if n_signatures == 0:
            blocks = int(rng.choice([0, 1, 2], p=[0.3, 0.4, 0.3]))  # unsigned lines are useful negatives
        elif rng.random() < 0.25:
            blocks += 1
        blocks = min(blocks, 6)
        variant = "closing" if letter and rng.random() < 0.8 else str(rng.choice(["label", "caption"]))
        columns = 1 if blocks == 1 and rng.random() < 0.6 else 2
        lh = self.line_height(self.body_size)
        gap = self.px(rng.uniform(95, 125))
        block_h = gap + 4 * lh + (lh if variant == "closing" else 0)
        while blocks > 0 and math.ceil(blocks / columns) * block_h > available:
            blocks -= 1
        return blocks, columns, block_h, variant

    def block(self, x0: int, x1: int, y: int, height: int, variant: str, with_date: bool, first: bool) -> _Block:
        rng = self.rng
        size = self.body_size
        lh = self.line_height(size)
        font = self.font(size)
        gap = height - 4 * lh - (lh if variant == "closing" else 0)
        name, title = _person(rng), _pick(rng, _JOB_TITLES)
        if variant == "closing":
            if first:  # one closing for all signers
                self.text(x0, y, self.closing, size, record=True)
            line_y = y + lh + gap
            self.text(x0, line_y + self.px(4), name, size, record=True)
            self.text(x0, line_y + self.px(4) + lh, title, size, record=True)
            return _Block(x0, x0 + int((x1 - x0) * 0.85), line_y, x0, x1, x0, False, None, line_y + 2 * lh + self.px(8))
        line_y = y + gap
        date_slot = None
        if variant == "label":
            label = _pick(rng, ("Signature:", "Signed:", "By:", "Authorized Signature:"))
            text_y = self._text_y_for_baseline(font, line_y)
            right = self.text(x0, text_y, label, size, record=True)
            line_x0 = right + self.px(8)
            line_x1 = x1 if x1 - line_x0 > self.px(180) else line_x0 + self.px(200)
            self.hline(line_x0, line_x1, line_y)
            yy = line_y + self.px(8)
            self.text(x0, yy, f"Name: {name}", size, record=True)
            yy += lh
            if rng.random() < 0.7:
                self.text(x0, yy, f"Title: {title}", size, record=True)
            yy += lh
            if with_date:
                date_y = yy + int(lh * 1.5)  # room above the line for a handwritten date
                right = self.text(x0, self._text_y_for_baseline(font, date_y), "Date:", size, record=True)
                dx0, dx1 = right + self.px(8), min(x1, right + self.px(rng.uniform(190, 260)))
                self.hline(dx0, dx1, date_y)
                date_slot = (dx0, dx1, date_y)
            return _Block(line_x0, line_x1, line_y, x0, x1, x0, True, date_slot, yy + 2 * lh)
        # caption: the line first, a small caption under it
        line_x1 = x0 + int((x1 - x0) * rng.uniform(0.7, 0.95))
        self.hline(x0, line_x1, line_y)
        small = size * 0.8
        self.text(
            x0,
            line_y + self.px(4),
            _pick(rng, ("Signature", "Authorized Signature", "Signature of Applicant")),
            small,
            record=True,
        )
        yy = line_y + self.px(4) + self.line_height(small)
        self.text(x0, yy, name, size, record=True)
        yy += lh
        if with_date:
            date_line = yy + lh + self.px(12)
            dx1 = x0 + self.px(rng.uniform(200, 260))
            self.hline(x0, dx1, date_line)
            self.text(x0, date_line + self.px(4), "Date", small, record=True)
            date_slot = (x0, dx1, date_line)
            yy = date_line + self.line_height(small)
        return _Block(x0, line_x1, line_y, x0, x1, x0, True, date_slot, yy + lh)

    @staticmethod
    def _text_y_for_baseline(font: Font, baseline: int) -> int:
        # Text whose letters sit on ``baseline`` (descenders go below it).
        return baseline - int(font.getbbox("H")[3])

    # ---- handwriting ----------------------------------------------------------------------

    def add_handwriting(self, label: str, writer: int, pieces: list[_Piece], left: float, bottom: float) -> _Patch:
        """Rasterize ``pieces`` and place them with the ink's left edge at ``left`` and lowest ink at ``bottom``."""
        alpha = _ink_alpha(pieces, 3)
        box = _bbox(alpha >= MASK_THRESHOLD) or (0, 0, alpha.shape[1], alpha.shape[0])
        tone = float(np.clip(_style(self.config.seed, writer).ink_gray + self.rng.normal(15, 15), 10, 140))
        patch = _Patch(label, page_writer_id(writer), round(left) - box[0], round(bottom) - box[3], alpha, tone)
        self.patches.append(patch)
        return patch

    def pen_width(self, style: WriterStyle) -> float:
        # Signatures on a 150 dpi page are smaller than scanned signature crops; so is the pen.
        return max(1.1, style.pen_width * 0.72 * self.u)

    def sign(self, block: _Block, writer: int, overlap: bool) -> _Patch:
        rng = self.rng
        style = _style(self.config.seed, writer)
        slot_w = block.x1 - block.x0
        max_w = min(self.px(rng.uniform(200, 390)), max(slot_w * 1.05, self.px(160)))
        max_h = self.px(rng.uniform(70, 125))
        pieces = _signature_pieces(style, rng, max_w, max_h, self.pen_width(style))
        w, h = _extent(pieces)
        left = block.x0 + rng.uniform(-0.05, 0.25) * max(slot_w - w, 0.0)
        if overlap:
            mode = rng.random()
            if mode < 0.5 or not block.has_line:
                bottom = block.line_y + h * rng.uniform(0.15, 0.45)  # strokes cross the line and the text below
            else:
                bottom = block.line_y + h * rng.uniform(0.0, 0.25)
                left = block.label_x + rng.uniform(0.0, 0.6) * (block.x0 - block.label_x)  # over the printed label
        else:
            bottom = block.line_y - self.px(rng.uniform(2, 9)) if block.has_line else block.line_y - self.px(4)
        return self.add_handwriting("signature", writer, pieces, left, bottom)

    def write_date(self, block: _Block, signature: _Patch, writer: int) -> None:
        rng = self.rng
        style = _style(self.config.seed, writer)
        habits = _writer_rng(style, _KIND_DATES)
        text = _date_text(rng, int(habits.integers(6)))
        height = self.px(rng.uniform(17, 28))
        pieces = date_pieces(style, text, height, rng, pen_width=self.pen_width(style))
        w, _ = _extent(pieces)
        _, _, sx1, sy1 = signature.ink_box()
        if block.date_slot is not None:
            dx0, dx1, line_y = block.date_slot
            left = dx0 + rng.uniform(0.0, 0.3) * max(dx1 - dx0 - w, 0.0)
            bottom = line_y - self.px(rng.uniform(1, 7))
        elif sx1 + self.px(30) + w < block.col_x1:  # to the right of the signature
            left = sx1 + self.px(rng.uniform(15, 40))
            bottom = block.line_y - self.px(rng.uniform(0, 15))
        else:  # under the printed name
            left = block.col_x0 + self.px(rng.uniform(0, 20))
            bottom = max(block.below_y, sy1 + self.px(6)) + height
        self.add_handwriting("handwritten_date", writer, pieces, left, bottom)

    def initials(self, writer: int, footer_top: int) -> None:
        rng = self.rng
        style = _style(self.config.seed, writer)
        height = self.px(rng.uniform(32, 55))
        pieces = initials_pieces(style, height, rng, pen_width=self.pen_width(style))
        w, _ = _extent(pieces)
        right_side = rng.random() < 0.6
        size = self.body_size * 0.8
        bottom: float = self.bottom - self.px(rng.uniform(0, 10))
        if rng.random() < 0.6:  # a printed "Initials: ____" box
            label = _pick(rng, ("Initials:", "Initial here:", "Initials"))
            line_w = max(self.px(90), int(w) + self.px(20))
            total = self.measure(label, size) + self.px(8) + line_w
            x = self.right - total if right_side else self.left
            font = self.font(size)
            base = self.bottom - self.px(6)
            end = self.text(x, self._text_y_for_baseline(font, base), label, size)
            self.hline(end + self.px(8), end + self.px(8) + line_w, base, width=1)
            left: float = end + self.px(12)
            bottom = base + self.px(rng.uniform(-6, 6))
        elif right_side:
            left = self.right - w - self.px(rng.uniform(0, 30))
        else:
            left = self.left + self.px(rng.uniform(0, 30))
        bottom = max(bottom, footer_top + height)
        self.add_handwriting("initials", writer, pieces, left, bottom)

    # ---- clutter --------------------------------------------------------------------------

    def redaction(self, line: _TextLine) -> None:
        rng = self.rng
        n = len(line.words)
        a = int(rng.integers(n))
        b = int(rng.integers(a, n)) + 1 if rng.random() < 0.7 else n
        pad_x, pad_y = self.px(rng.uniform(1, 6)), self.px(rng.uniform(1, 5))
        x0, x1 = line.words[a][0] - pad_x, line.words[b - 1][1] + pad_x
        y0, y1 = line.top - pad_y, line.bottom + pad_y
        alpha = np.ones((y1 - y0, x1 - x0), dtype=np.float32)
        self.patches.append(_Patch("redaction", None, x0, y0, alpha, self.redaction_tone))

    def whiteout(self, line: _TextLine) -> None:
        rng = self.rng
        n = len(line.words)
        a = int(rng.integers(n))
        b = min(n, a + int(rng.integers(1, 4)))
        pad = self.px(rng.uniform(2, 6))
        self.whiteouts.append((line.words[a][0] - pad, line.top - pad, line.words[b - 1][1] + pad, line.bottom + pad))

    def stamp(self, cx: float, cy: float, company: str) -> None:
        """A rubber stamp: outlined text, rotated, light and speckled; clutter, part of the print mask."""
        rng = self.rng
        word = _pick(rng, _STAMP_WORDS)
        date = f"{int(rng.integers(1, 29))} {_pick(rng, _MONTHS)[:3].upper()} {int(rng.integers(1988, 2026))}"
        thick = max(2, self.px(rng.uniform(2, 4)))
        if rng.random() < 0.5:
            d = self.px(rng.uniform(130, 200))
            img = Image.new("L", (d + 8, d + 8), 0)
            draw = ImageDraw.Draw(img)
            draw.ellipse((4, 4, d + 3, d + 3), outline=255, width=thick)
            inner = int(d * 0.12)
            draw.ellipse((4 + inner, 4 + inner, d + 3 - inner, d + 3 - inner), outline=255, width=max(1, thick // 2))
            c = d / 2 + 4
            draw.text((c, c - d * 0.13), word, fill=255, font=_font(max(8, int(d * 0.13))), anchor="mm")
            draw.text((c, c + d * 0.1), date, fill=255, font=_font(max(7, int(d * 0.09))), anchor="mm")
            name = company.upper()
            draw.text(
                (c, 4 + inner * 0.5 + d * 0.06), name[:18], fill=255, font=_font(max(6, int(d * 0.06))), anchor="mm"
            )
        else:
            size = rng.uniform(30, 52)
            font = self.font(size)
            tw = int(font.getlength(word))
            w, h = tw + self.px(40), self.px(size * 2.4)
            img = Image.new("L", (w, h), 0)
            draw = ImageDraw.Draw(img)
            draw.rectangle((0, 0, w - 1, h - 1), outline=255, width=thick)
            if rng.random() < 0.5:
                draw.rectangle((thick + 3, thick + 3, w - thick - 4, h - thick - 4), outline=255, width=1)
            draw.text((w / 2, h * 0.4), word, fill=255, font=font, anchor="mm", stroke_width=1, stroke_fill=255)
            draw.text((w / 2, h * 0.78), date, fill=255, font=self.font(size * 0.4), anchor="mm")
        img = img.rotate(float(rng.uniform(-25, 25)), resample=Image.Resampling.BILINEAR, expand=True)
        opacity = rng.uniform(0.5, 0.9)
        alpha = np.asarray(img, dtype=np.float32) * np.float32(opacity / 255)
        h, w = alpha.shape
        # Rubber stamps ink unevenly; the mask level sits under the lightest speckle so it keeps the full shape.
        alpha *= np.float32(0.75) + np.float32(0.25) * self.rng.random((h, w), dtype=np.float32)
        x, y = round(cx - w / 2), round(cy - h / 2)
        tone = float(rng.uniform(60, 150))
        self.patches.append(_Patch("", None, x, y, alpha, tone, level=MASK_THRESHOLD * opacity * 0.75))

    # ---- whole page -----------------------------------------------------------------------

    def layout(self) -> None:
        rng = self.rng
        cfg = self.config
        company = _company(rng)
        kind = str(rng.choice(["letter", "contract", "form"], p=[0.4, 0.3, 0.3]))
        y = self.letterhead(company)
        header_bottom = y
        # Footer: page number and room for corner initials.
        footer_top = self.bottom - self.px(70)
        size = self.body_size * 0.8
        number = int(rng.integers(1, 9))
        page_text = str(
            rng.choice([f"Page {number} of {number + int(rng.integers(0, 5))}", f"- {number} -", str(number)])
        )
        self.text((self.W - self.measure(page_text, size)) / 2, self.bottom - self.px(22), page_text, size)

        n_sig = int(rng.integers(cfg.signatures[0], cfg.signatures[1] + 1))
        available = footer_top - y - self.px(150)  # keep some body text above the signatures
        blocks, columns, block_h, variant = self.plan_blocks(n_sig, available, kind == "letter")
        n_sig = min(n_sig, blocks)
        rows = math.ceil(blocks / columns) if blocks else 0
        area_top = footer_top - rows * block_h - self.px(10)
        limit = area_top - self.px(20) if blocks else footer_top
        if kind == "letter":
            end = self.letter_body(y, limit)
        elif kind == "contract":
            end = self.contract_body(y, limit)
        else:
            end = self.form_body(y, limit)
        body_lines = len(self.lines)  # redaction candidates: body text, not the signature blocks
        if blocks:
            # Sit the signature area right under the text, as documents do, unless the text ran long.
            area_top = min(area_top, max(end + self.px(rng.uniform(15, 60)), y))
            if kind == "contract" and end + self.line_height(self.body_size) * 2 < area_top:
                self.paragraph(end, self.left, self.right, area_top, 2, justify=True, size=self.body_size)

        signers = [int(w) for w in rng.choice(WRITER_POOL, size=max(n_sig, 1), replace=False) + 1]
        chosen = set(rng.choice(blocks, size=n_sig, replace=False).tolist()) if blocks else set()
        col_gap = self.px(60)
        col_w = (self.right - self.left - (columns - 1) * col_gap) // columns
        if columns == 1 and rng.random() < 0.5:  # a single block often sits on the right half
            col_w = int((self.right - self.left) * rng.uniform(0.5, 0.6))
        signatures: list[_Patch] = []
        k = 0
        for b in range(blocks):
            r, c = divmod(b, columns)
            x0 = self.left + c * (col_w + col_gap)
            if columns == 1 and col_w < (self.right - self.left) // 2 + self.px(200) and rng.random() < 0.6:
                x0 = self.right - col_w
            signed = b in chosen
            with_date = signed and rng.random() < cfg.date_probability
            with_date_line = with_date or rng.random() < 0.3
            blk = self.block(x0, x0 + col_w, area_top + r * block_h, block_h, variant, with_date_line, b == 0)
            if signed:
                writer = signers[k]
                k += 1
                patch = self.sign(blk, writer, rng.random() < cfg.overlap_text_probability)
                signatures.append(patch)
                if with_date:
                    self.write_date(blk, patch, writer)

        if rng.random() < cfg.initials_probability:
            writer = (
                signers[int(rng.integers(len(signers)))]
                if rng.random() < 0.7
                else int(rng.integers(1, WRITER_POOL + 1))
            )
            self.initials(writer, footer_top)

        candidates = [i for i, line in enumerate(self.lines[:body_lines]) if line.words]
        n_red = min(int(rng.integers(cfg.redactions[0], cfg.redactions[1] + 1)), len(candidates))
        picked: list[int] = []  # distinct lines: n_red redactions, then maybe one white-out
        if candidates:
            picked = rng.choice(len(candidates), size=min(n_red + 1, len(candidates)), replace=False).tolist()
        for j, i in enumerate(picked):
            if j < n_red:
                self.redaction(self.lines[candidates[int(i)]])
            elif rng.random() < 0.15:
                self.whiteout(self.lines[candidates[int(i)]])

        if rng.random() < cfg.stamp_probability:
            if signatures:
                sx0, sy0, sx1, sy1 = signatures[int(rng.integers(len(signatures)))].ink_box()
                cx = rng.uniform(sx0, sx1) + self.px(rng.uniform(-40, 120))
                cy = rng.uniform(sy0, sy1) + self.px(rng.uniform(-60, 40))
            else:
                cx, cy = rng.uniform(self.left + 100, self.right - 100), rng.uniform(self.H * 0.3, self.H * 0.8)
            self.stamp(cx, cy, company)
        if cfg.hard_negatives > 0:
            self.hard_negatives(header_bottom, [s.ink_box() for s in signatures])

    def hard_negatives(self, header_bottom: int, signatures: list[Box]) -> None:
        """Unboxed notes, figures, marks and a script wordmark (:mod:`.negatives`), on their own random stream."""
        taken = []
        for patch in self.patches:
            h, w = patch.alpha.shape
            taken.append((patch.x, patch.y, patch.x + w, patch.y + h))
        for item in draw_hard_negatives(
            seed=self.config.seed,
            index=self.index,
            probability=self.config.hard_negatives,
            print_coverage=np.asarray(self.layer),
            taken=taken,
            frame=(self.left, self.top, self.right, self.bottom),
            header_bottom=header_bottom,
            near=signatures,
            unit=self.u,
        ):
            self.patches.append(_Patch("", None, item.x, item.y, item.alpha, item.tone, handwritten=item.handwritten))


def _date_text(rng: np.random.Generator, style: int) -> str:
    day, month, year = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1988, 2026))
    formats = (
        f"{day}/{month}/{year % 100:02d}",
        f"{day:02d}/{month:02d}/{year}",
        f"{day}.{month}.{year}",
        f"{year}-{month:02d}-{day:02d}",
        f"{month}/{day}/{year}",
        f"{day}-{month}-{year % 100:02d}",
    )
    return formats[style % len(formats)]


def _render(index: int, config: PageConfig) -> tuple[SyntheticPage, tuple[_ObjectMask, ...]]:
    """The page plus each field's own mask (exposed for tests of box tightness)."""
    _check_int("index", index, 0, 2**63 - 1)
    builder = _PageBuilder(index, config)
    builder.layout()
    rng = builder.rng
    H, W = config.height, config.width

    paper_gray = float(rng.uniform(228, 250))
    paper = _paper(rng, (H, W), paper_gray)
    coverage = np.asarray(builder.layer).copy()
    for x0, y0, x1, y1 in builder.whiteouts:
        coverage[max(y0, 0) : y1, max(x0, 0) : x1] = 0  # the text under the correction fluid is gone
    tone = np.float32(builder.print_tone)
    cov = coverage.astype(np.float32) * np.float32(1 / 255)
    canvas = paper - cov * (paper - tone)
    for x0, y0, x1, y1 in builder.whiteouts:
        canvas[max(y0, 0) : y1, max(x0, 0) : x1] = np.float32(min(255.0, paper_gray + rng.uniform(4, 10)))
        edge = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
        edge[[0, -1], :] = edge[:, [0, -1]] = 0.12  # the faint rim of the dried fluid
        _darken(canvas, paper, edge, 120.0, x0, y0)
    # Print and clutter first, handwriting last: ink written over a stamp keeps both, as on paper.
    for patch in sorted(builder.patches, key=lambda p: p.handwriting):
        _darken(canvas, paper, patch.alpha, patch.tone, patch.x, patch.y)
    image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)

    transform = None
    if config.noise > 0:
        angle = rng.uniform(-1.0, 1.0) * min(config.noise, 1.0)
        if angle != 0.0:
            transform = _Affine.rotation(angle, W, H)
            image = np.array(transform.apply(Image.fromarray(image), round(paper_gray), Image.Resampling.BILINEAR))
            # Nearest is 10x faster than bilinear here and exact enough for a mask.
            coverage = np.asarray(transform.apply(Image.fromarray(coverage), 0, Image.Resampling.NEAREST))
        image = _scan(image, rng, config.noise, paper_gray)

    ink_mask = np.zeros((H, W), dtype=np.bool_)
    print_mask = coverage >= round(MASK_THRESHOLD * 255)
    fields: list[tuple[FieldBox, _ObjectMask]] = []
    for patch in builder.patches:
        # Clip to the page first, as the composite did: ink off the page must not rotate back in.
        X0, Y0 = max(patch.x, 0), max(patch.y, 0)
        alpha = patch.alpha[Y0 - patch.y : H - patch.y, X0 - patch.x : W - patch.x]
        if transform is not None and alpha.size:
            alpha, X0, Y0 = transform.apply_patch(alpha, X0, Y0, W, H)
        mask = alpha >= patch.level
        box = _bbox(mask)
        if box is None:
            continue
        h, w = mask.shape
        target = ink_mask if patch.handwriting else print_mask
        target[Y0 : Y0 + h, X0 : X0 + w] |= mask
        if patch.label:
            field = FieldBox(patch.label, (box[0] + X0, box[1] + Y0, box[2] + X0, box[3] + Y0), patch.writer)
            fields.append((field, _ObjectMask(field, X0, Y0, mask)))
    fields.sort(key=lambda f: (FIELD_CLASSES.index(f[0].label), f[0].box[1], f[0].box[0]))
    page = SyntheticPage(image, tuple(f for f, _ in fields), ink_mask, print_mask)
    return page, tuple(m for _, m in fields)


def render_page(index: int, config: PageConfig = PageConfig()) -> SyntheticPage:
    """Page ``index`` of the synthetic document set ``config`` (deterministic, independent of other pages).

    Boxes are tight around each object's own mask after the scan's skew; ``ink_mask`` is the union
    of the handwriting objects' masks and ``print_mask`` everything printed or stamped.
    """
    return _render(index, config)[0]
