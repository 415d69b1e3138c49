"""``inkproof document report`` errors: each is one line on stderr, exit status 2, in inkproof's words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from inkproof.cli.app import app
from tests.document.test_pages import _huge_png_header

runner = CliRunner()


def _error_line(args: list[str], env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, ["document", "report", *args], env=env)
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "\n" not in text, text  # one line, even past 80 columns and without a terminal
    assert text.startswith("error:") and "Traceback" not in text
    assert " object at 0x" not in text and "DOS" not in text and "decompression bomb" not in text
    return text


@pytest.fixture
def deep(tmp_path: Path) -> Path:
    """A folder whose path is long enough that any message about it passes 80 columns."""
    folder = tmp_path / ("a-rather-long-folder-name-for-scanned-contracts-" * 2) / "2024"
    folder.mkdir(parents=True)
    return folder


def test_a_folder_is_refused_in_one_line(deep: Path) -> None:
    assert "is a folder; give one document file" in _error_line([str(deep)])


def test_a_missing_file(deep: Path) -> None:
    assert "file not found" in _error_line([str(deep / "missing.pdf")])


def test_not_a_document(deep: Path) -> None:
    path = deep / "notes.png"
    path.write_bytes(b"hello, this is not an image at all")
    assert "not a PDF or a readable image" in _error_line([str(path)])


def test_a_page_above_the_pixel_limit_names_the_option_and_the_variable(deep: Path) -> None:
    path = deep / "poster.png"
    path.write_bytes(_huge_png_header(20_000, 10_000))  # 200 MP, above Pillow's own 179 MP refusal
    text = _error_line([str(path)])
    assert "200,000,000 pixels" in text and "--max-pixels" in text and "INKPROOF_MAX_PIXELS" in text
    # Raised with the option, the limit lets the page through to decoding (this one is truncated).
    raised = _error_line([str(path), "--max-pixels", "250000000"])
    assert "over the limit" not in raised and "corrupt or truncated" in raised


def test_the_pixel_limit_from_the_environment(deep: Path) -> None:
    path = deep / "page.png"
    Image.fromarray(np.full((400, 300), 255, dtype=np.uint8)).save(path)
    text = _error_line([str(path)], env={"INKPROOF_MAX_PIXELS": "100000"})
    assert "over the limit of 100,000" in text
    assert "over the limit" in _error_line([str(path), "--max-pixels", "1000"])


def test_a_report_output_that_is_a_file(deep: Path) -> None:
    page = deep / "page.png"
    Image.fromarray(np.full((400, 300), 255, dtype=np.uint8)).save(page)
    taken = deep / "out.txt"
    taken.write_text("not a folder")
    assert "is not a folder" in _error_line([str(page), "--out", str(taken), "--no-clean"])
