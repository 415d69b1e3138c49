"""Evidence from the command line: verify-claim / verify --report (HTML and PDF), review with a
note, the evidence of a logged claim, and the audit export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from inkproof.cli.app import app
from inkproof.data.synthetic import sample_signatures

runner = CliRunner()


def _signatures(folder: Path) -> list[Path]:
    rendered = sample_signatures(10, seed=7, writers=1)[0::2]  # one writer's genuine signatures
    paths = []
    for i, image in enumerate(rendered):
        paths.append(folder / f"s{i}.png")
        Image.fromarray(image).save(paths[-1])
    return paths


def test_claim_and_pair_reports_review_note_and_log_export(tmp_path: Path) -> None:
    files = _signatures(tmp_path)
    db = str(tmp_path / "store.db")
    assert runner.invoke(app, ["enroll", "W", *map(str, files[:4]), "--db", db]).exit_code == 0

    html, pdf = tmp_path / "claim.html", tmp_path / "claim.pdf"
    first = runner.invoke(app, ["verify-claim", "W", str(files[4]), "--db", db, "--report", str(html), "--json"])
    assert first.exit_code == 0, first.output
    claim = json.loads(first.output)
    text = html.read_text()
    assert claim["query_sha256"] in text and "reproduced from the log" in text
    assert text.count("data:image/png;base64,") == 1 + 3 * 4  # the query, three views per reference
    second = runner.invoke(app, ["verify-claim", "W", str(files[4]), "--db", db, "--report", str(pdf)])
    assert second.exit_code == 0, second.output
    assert pdf.read_bytes().startswith(b"%PDF")
    refused = runner.invoke(app, ["verify-claim", "W", str(files[4]), "--db", db, "--report", str(tmp_path / "r.doc")])
    assert refused.exit_code == 2 and not (tmp_path / "r.doc").exists()

    # Rebuilt later from the log; a decided claim's query is not kept by the CLI, so it is given again.
    rebuilt = runner.invoke(
        app,
        [
            "review",
            "evidence",
            str(claim["log_id"]),
            "--query",
            str(files[4]),
            "--report",
            str(tmp_path / "again.html"),
            "--db",
            db,
            "--json",
        ],
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.output)["reproduction"]["matches"] is True

    pair = tmp_path / "pair.pdf"
    result = runner.invoke(app, ["verify", str(files[0]), str(files[1]), "--report", str(pair)])
    assert result.exit_code == 0, result.output
    assert pair.read_bytes().startswith(b"%PDF")

    exported = runner.invoke(app, ["store", "log-export", "--db", db, "--format", "csv"])
    assert exported.exit_code == 0, exported.output
    table = list(csv.DictReader(io.StringIO(exported.output)))
    assert [int(row["log_id"]) for row in table] == [claim["log_id"], claim["log_id"] + 1]
    assert table[0]["method"] == claim["method"] and len(table[0]["reference_sha256"].split(";")) == 4
    as_json = runner.invoke(
        app, ["store", "log-export", "--db", db, "--format", "json", "--out", str(tmp_path / "l.json")]
    )
    assert as_json.exit_code == 0 and len(json.loads((tmp_path / "l.json").read_text())) == 2
    assert runner.invoke(app, ["store", "log-export", "--db", db, "--format", "xml"]).exit_code == 2
