"""Hostile and malformed inputs for the service, generated in code (nothing stored in the repo).

``issue_recipes()`` are the inputs that once gave 500s or wrong answers; ``fuzz_corpus()`` adds
seeded mutations of valid files so that every upload endpoint sees well over 150 inputs. Each
input says whether it may legitimately succeed (a readable signature with ink): everything else
must be a typed 4xx.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.helpers import draw_scribble


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    mime: str = "image/png"
    may_succeed: bool | None = False  # True: a valid signature (200 expected); None: either is right
    blank: bool = False  # a readable image without ink: must be refused as such


def png(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


# --- PDFs ----------------------------------------------------------------------------------------


def pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF with a correct cross-reference table around ``objects`` (numbered from 1)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def pdf_pages(sizes: list[tuple[float, float]], content: bytes = b"", *, compress: bool = False) -> bytes:
    """Pages of the given sizes in points, each drawing ``content``."""
    count = len(sizes)
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(count))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count)]
    stream_number = 3 + count
    for width, height in sizes:
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents %d 0 R >>" % (width, height, stream_number)
        )
    data = zlib.compress(content, 9) if compress else content
    flate = b" /Filter /FlateDecode" if compress else b""
    objects.append(b"<< /Length %d%s >>\nstream\n" % (len(data), flate) + data + b"\nendstream")
    return pdf(objects)


def pdf_self_referencing_pages() -> bytes:
    """A /Pages node that lists itself as a kid (a cycle in the page tree)."""
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        ]
    )


def pdf_stroke_bomb(strokes: int) -> bytes:
    """One page whose (compressed, small) content stream draws ``strokes`` lines."""
    content = b"1 w\n" + b"10 10 m 590 780 l S\n" * strokes
    return pdf_pages([(612, 792)], content, compress=True)


def pdf_blank_giant_pages(count: int = 20) -> bytes:
    """``count`` blank 2900 x 3000 pt pages: a few KB that render to gigabytes."""
    return pdf_pages([(2900, 3000)] * count)


# --- the recipes ---------------------------------------------------------------------------------


def issue_recipes() -> list[Sample]:
    """The inputs reported to break the service."""
    samples = [
        Sample("white", png(np.full((200, 500), 255, np.uint8)), blank=True),
        Sample("white-1x1", png(np.full((1, 1), 255, np.uint8)), blank=True),
        Sample("black-300x200", png(np.zeros((200, 300), np.uint8)), blank=True),
        Sample("grey", png(np.full((120, 300), 128, np.uint8)), blank=True),
        Sample("grey-paper", png(np.full((200, 500), 245, np.uint8)), blank=True),
    ]
    for height, width in ((1, 5000), (5000, 1), (3, 20000), (20000, 3), (1, 100000), (100000, 1)):
        samples.append(Sample(f"black-{width}x{height}", png(np.zeros((height, width), np.uint8)), blank=True))
    samples += [
        Sample("pdf-self-kid", pdf_self_referencing_pages(), "application/pdf"),
        Sample("pdf-no-objects", b"%PDF-1.4\nno objects here", "application/pdf"),
        Sample("eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n", "image/png"),
        Sample("png-bomb", png_header_only(50_000, 50_000)),
        Sample("png-zero-width", png_header_only(0, 10)),
        Sample("empty", b""),
    ]
    return samples


def valid_samples() -> list[Sample]:
    scribble = draw_scribble(320, 120, seed=11)
    image = Image.fromarray(scribble)
    return [
        Sample("scribble-png", png(scribble), may_succeed=True),
        Sample("scribble-jpeg", encode(image, "JPEG", quality=90), "image/jpeg", may_succeed=True),
        Sample("scribble-tiff", encode(image, "TIFF"), "image/tiff", may_succeed=True),
        Sample("scribble-bmp", encode(image, "BMP"), "image/bmp", may_succeed=True),
        Sample("scribble-webp", encode(image, "WEBP", lossless=True), "image/webp", may_succeed=True),
        Sample("scribble-rgba", png(np.dstack([scribble] * 3 + [np.full_like(scribble, 255)])), may_succeed=True),
        Sample("scribble-16bit", encode(Image.fromarray(scribble.astype(np.uint16) * 257), "PNG"), may_succeed=True),
        Sample("scribble-octet", png(scribble), "application/octet-stream", may_succeed=True),
    ]


def other_formats() -> list[Sample]:
    scribble = Image.fromarray(draw_scribble(320, 120, seed=12))
    transparent = Image.new("RGBA", (300, 120), (0, 0, 0, 0))
    return [
        Sample("gif", encode(scribble, "GIF"), "image/gif"),
        Sample("gif-as-png", encode(scribble, "GIF")),
        Sample("ppm-as-png", encode(scribble, "PPM")),
        Sample("ico-as-png", encode(scribble.resize((64, 64)), "ICO")),
        Sample("pcx-as-png", encode(scribble, "PCX")),
        Sample("tga-as-png", encode(scribble, "TGA")),
        Sample("eps-real", encode(scribble.convert("L"), "EPS"), "application/postscript"),
        Sample("transparent", png(np.asarray(transparent)), blank=True),
        Sample("text", b"hello, this is not an image", "text/plain"),
        Sample("html", b"<html><script>alert(1)</script></html>", "text/html"),
        Sample("json", b'{"reference": "/etc/passwd"}', "application/json"),
        Sample(
            "svg", b'<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>', "image/svg+xml"
        ),
        Sample("zip", b"PK\x03\x04" + bytes(100), "application/zip"),
        Sample("pdf-as-signature", pdf_pages([(200, 100)]), "application/pdf"),
        Sample("pdf-small-bomb", pdf_stroke_bomb(20_000), "application/pdf"),
        Sample("pdf-zero-size-page", pdf_pages([(0, 0)]), "application/pdf"),
        Sample("pdf-negative-page", pdf_pages([(-100, 50)]), "application/pdf"),
        Sample(
            "pdf-huge-count",
            pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 99999999999 >>"]),
            "application/pdf",
        ),
        Sample("pdf-truncated", pdf_pages([(200, 100)])[:-60], "application/pdf"),
        Sample("pdf-garbage-stream", pdf_pages([(200, 100)], b"\xff\x00" * 50), "application/pdf"),
    ]


def mutations(base: bytes, count: int, seed: int) -> Iterator[Sample]:
    """Seeded bit flips, byte overwrites, truncations and splices of a valid file."""
    rng = random.Random(seed)
    for i in range(count):
        data = bytearray(base)
        kind = i % 4
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                position = rng.randrange(len(data))
                data[position] ^= 1 << rng.randrange(8)
        elif kind == 1:
            position = rng.randrange(8, len(data))
            data[position : position + 4] = struct.pack(">I", rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF]))
        elif kind == 2:
            data = data[: rng.randrange(1, len(data))]
        else:
            start = rng.randrange(len(data))
            data = data[:start] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + data[start:]
        # Many mutants still decode (a flipped bit in pixel data): 200 and a typed 4xx are both right.
        yield Sample(f"mutant-{seed}-{i}", bytes(data), may_succeed=None)


def random_bytes(count: int, seed: int) -> Iterator[Sample]:
    rng = random.Random(seed)
    for i in range(count):
        prefix = rng.choice([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"BM", b"RIFF", b"%PDF-1.7\n"])
        body = bytes(rng.randrange(256) for _ in range(rng.choice([1, 7, 64, 512, 4096])))
        yield Sample(f"random-{i}", prefix + body, may_succeed=None)


def fuzz_corpus() -> list[Sample]:
    """At least 150 inputs: the issue's recipes, valid files, other formats and mutations."""
    scribble = draw_scribble(320, 120, seed=13)
    base_png = png(scribble)
    base_tiff = encode(Image.fromarray(scribble), "TIFF")
    samples = [*issue_recipes(), *valid_samples(), *other_formats()]
    samples += list(mutations(base_png, 70, seed=1))
    samples += list(mutations(base_tiff, 20, seed=2))
    samples += list(random_bytes(30, seed=3))
    assert len(samples) >= 150, len(samples)
    return samples


# Fields that once reached the database unchecked.
BAD_WRITER_IDS = [
    "W001\u200b",  # zero-width space
    "W\x00001",  # NUL (PostgreSQL refuses it)
    "a" * 256,
    "a/b",
    "..",
    "\u202eW001",  # right-to-left override
    "W\u0007",  # bell
    "   ",
]
BAD_ROW_IDS = ["99999999999999999999", "2147483648", "0", "-1", "1e3"]
BAD_THRESHOLDS = ["nan", "inf", "-inf", "NaN", "1e999"]
