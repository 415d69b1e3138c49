from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from inkproof.benchmark.report import update_section
from inkproof.cli.app import app

runner = CliRunner()


def test_speed_benchmark_writes_json_and_markdown(onnx_model: Path, tmp_path: Path) -> None:
    markdown = tmp_path / "benchmarks.md"
    markdown.write_text("# inkproof benchmarks\n\nIntro text stays.\n")
    out = tmp_path / "speed.json"
    result = runner.invoke(
        app,
        [
            "benchmark",
            "speed",
            "--model",
            str(onnx_model),
            "--batches",
            "1,4",
            "--seconds",
            "0.1",
            "--out",
            str(out),
            "--markdown",
            str(markdown),
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    backends = {b["backend"]: b for b in record["backends"]}
    assert {"onnxruntime fp32", "torch eager"} <= set(backends)
    for backend in backends.values():
        assert set(backend["latency_ms"]) == {"p50", "p95", "p99"}
        assert backend["latency_ms"]["p50"] <= backend["latency_ms"]["p99"]
        assert set(backend["throughput"]) == {"1", "4"}
    assert record["machine"]["cores"] >= 1
    assert record["preprocessing_ms"]["p50"] > 0
    text = markdown.read_text()
    assert "Intro text stays." in text
    assert "| onnxruntime fp32 |" in text
    assert "vs torch eager in this run" in text


def test_update_section_replaces_only_its_block(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    update_section(path, "speed", "first", title="Speed")
    update_section(path, "accuracy", "table", title="Accuracy")
    update_section(path, "speed", "second")
    text = path.read_text()
    assert "second" in text and "first" not in text and "table" in text
    assert text.count("## Speed") == 1
