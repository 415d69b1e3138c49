"""Machine descriptions and marked sections of docs/benchmarks.md that benchmarks rewrite."""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from typing import Any


def machine_description() -> dict[str, Any]:
    """CPU model, core count, memory, OS and library versions, for every benchmark record."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.MULTILINE)
        if match:
            cpu = match.group(1).strip()
    memory = None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        match = re.search(r"^MemTotal:\s*(\d+) kB", meminfo.read_text(), flags=re.MULTILINE)
        if match:
            memory = round(int(match.group(1)) / 1024**2, 1)
    versions: dict[str, str] = {}
    for module in ("numpy", "onnxruntime", "torch", "PIL"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }


def describe_machine(machine: dict[str, Any]) -> str:
    memory = f", {machine['memory_gib']} GiB RAM" if machine.get("memory_gib") else ""
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
    system = f"{machine['system']}; Python {machine['python']}"
    return f"{machine['cpu']}, {machine['cores']} cores{memory}; {system}; {versions}"


def update_section(path: str | Path, name: str, content: str, *, title: str | None = None) -> Path:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in a markdown
    file (appending the section, under ``title``, when it is not there yet)."""
    target = Path(path)
    text = target.read_text(encoding="utf-8") if target.is_file() else "# inkproof benchmarks\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{content.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        heading = f"\n## {title}\n\n" if title else "\n"
        text = text.rstrip() + "\n" + heading + block + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return target
