"""Evidence: overlay alignment, measured features, pair evidence as HTML and PDF (bundled model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inkproof.data.synthetic import sample_signatures
from inkproof.evidence.align import Alignment, _points, align, distance_transform, warp
from inkproof.evidence.features import connected_components, measure
from inkproof.preprocess import PreprocessConfig, preprocess_signature


def _ink(seed: int = 3) -> np.ndarray:
    return preprocess_signature(sample_signatures(1, seed=seed)[0], PreprocessConfig(height=112, width=160))


def test_distance_transform_is_exact_euclidean() -> None:
    mask = np.zeros((9, 12), dtype=bool)
    mask[2, 3] = mask[7, 10] = True
    ys, xs = np.mgrid[0:9, 0:12]
    expected = np.minimum(np.hypot(ys - 2, xs - 3), np.hypot(ys - 7, xs - 10))
    assert np.allclose(distance_transform(mask), expected)


@pytest.mark.parametrize(("angle", "dx", "dy", "scale"), [(8.0, 6.0, -4.0, 1.0), (-12.0, -9.0, 5.0, 1.08)])
def test_overlay_aligns_a_shifted_rotated_copy(angle: float, dx: float, dy: float, scale: float) -> None:
    reference = _ink()
    h, w = reference.shape
    moved = Alignment(angle, scale, dx, dy, w / 2, h / 2, 0.0, 0.0)
    query = warp(reference, moved)  # the reference, rotated, scaled and shifted
    found = align(query, reference)
    points = _points(reference)
    back = found.apply(moved.apply(points))  # reference -> query -> aligned back
    error = np.hypot(*(back - points).T)
    assert error.mean() < 1.5 and np.percentile(error, 95) < 3.0
    assert found.chamfer_after < 0.5 < found.chamfer_before
    # Without the transform the same points are far off: the test can fail.
    assert np.hypot(*(moved.apply(points) - points).T).mean() > 5.0


def test_features_measure_what_they_say() -> None:
    mask = np.zeros((20, 30), dtype=bool)
    mask[2:5, 2:10] = True
    mask[10:15, 3:4] = True
    mask[8:18, 20:28] = True
    mask[0, 29] = True  # a speck below the size of a pen stroke
    assert connected_components(mask) == 3
    ink = np.zeros((60, 100))
    for row in range(10, 50):  # strokes leaning right by about 30 degrees
        for x0 in (20, 45, 70):
            ink[row, int(x0 + (50 - row) * np.tan(np.radians(30)))] = 1.0
    features = measure(ink)
    assert 24.0 <= features.slant_deg <= 36.0
    assert features.components == 3
    assert abs(measure(ink[:, ::-1]).slant_deg + features.slant_deg) < 4.0


def test_pair_evidence_report_html_and_pdf(tmp_path: Path) -> None:
    from inkproof import Verifier
    from inkproof.evidence import pair_evidence, write_report
    from inkproof.evidence.report import EvidenceFormatError

    a, b = sample_signatures(2, seed=1, writers=1)
    with Verifier() as verifier:
        record = pair_evidence(verifier, a, b)
        plain = verifier.verify(a, b)
    assert record.score == pytest.approx(plain.score, abs=1e-5)
    assert record.decision == plain.decision
    assert record.model.embedder_sha256 and record.model.preprocess_version
    comparison = record.comparisons[0]
    assert set(comparison.images) == {"side_by_side", "overlay", "sensitivity"}
    assert 0 < comparison.sensitivity.patches <= 160
    html = write_report(record, tmp_path / "r.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "http" not in html.replace("http-equiv", "")
    assert record.model.embedder_sha256 in html and record.query_sha256 in html
    pdf = write_report(record, tmp_path / "r.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 1
    with pytest.raises(EvidenceFormatError):
        write_report(record, tmp_path / "r.txt")


def test_evidence_never_imports_torch_or_the_store(tmp_path: Path) -> None:
    """The pair evidence path (``inkproof verify --report``) needs the serve extra's nothing."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from inkproof import Verifier\n"
        "from inkproof.data.synthetic import sample_signatures\n"
        "from inkproof.evidence import pair_evidence, write_report\n"
        "a, b = sample_signatures(2, seed=1, writers=1)\n"
        f"write_report(pair_evidence(Verifier(), a, b), {str(tmp_path / 'r.pdf')!r})\n"
        "heavy = {'torch', 'sqlalchemy', 'fastapi', 'sklearn', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
