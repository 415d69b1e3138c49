"""The project's own promises about installation, import cost and CI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", text, flags=re.DOTALL)


def test_readme_starts_with_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_block = text.index("```")
    commands = _readme_commands()
    assert len(commands) >= 2
    for command in commands[:2]:
        assert "\n" not in command.strip(), "each of the first two commands is one line"
    # Nothing but a title and a sentence or two before the commands.
    assert len(text[:first_block].strip().splitlines()) <= 6


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _readme_commands()[1].strip()
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_importing_inkproof_does_not_import_torch() -> None:
    code = (
        "import sys, inkproof, inkproof.imaging, inkproof.preprocess, inkproof.data, inkproof.evaluation, "
        "inkproof.cli.app; heavy = {'torch', 'torchvision', 'timm', 'onnxruntime', 'sklearn', 'fastapi'} "
        "& set(sys.modules); print(sorted(heavy)); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
