"""Model cards: the JSON that travels with every model file.

A card records what is needed to use a model correctly and to trust its numbers: the registered
model name and config, the preprocessing version and parameters, the input size, what the score
means, thresholds calibrated on validation writers, the training provenance, and the sha256 of
every weight file. Torch-free: the runtime, the exporter and the trainer all read it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inkproof.atomic import write_json_atomic
from inkproof.errors import InkproofError
from inkproof.evaluation.metrics import CalibratedThresholds
from inkproof.preprocess import PREPROCESS_VERSION, PreprocessConfig

CARD_VERSION = 1
WeightFormat = Literal["safetensors", "onnx", "onnx-int8", "tensorrt"]


class ArtifactError(InkproofError):
    """A model file or card is missing, inconsistent or was modified."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class ModelCard:
    name: str
    model_config: dict[str, Any]
    preprocess: dict[str, Any]
    head: str
    embedding_dim: int
    format: WeightFormat
    files: dict[str, str]  # role ("weights", "embedder", "head") -> file name beside the card
    sha256: dict[str, str]  # file name -> sha256
    thresholds: CalibratedThresholds | None = None
    training: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    # Writer-dependent claim scoring calibrated on validation writers (inkproof.claims); None: plain fusion.
    claims: dict[str, Any] | None = None
    created: str = field(default_factory=_now)
    inkproof_version: str = ""
    card_version: int = CARD_VERSION

    def __post_init__(self) -> None:
        if not self.inkproof_version:
            from inkproof import __version__

            object.__setattr__(self, "inkproof_version", __version__)

    @property
    def preprocess_config(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.preprocess)

    @property
    def preprocess_version(self) -> str:
        return str(self.preprocess.get("version", PREPROCESS_VERSION))

    @property
    def input_size(self) -> tuple[int, int]:
        return self.preprocess_config.input_size

    def threshold(self, rule: str = "eer") -> float:
        if self.thresholds is None:
            raise ArtifactError(f"model {self.name!r} carries no calibrated thresholds; pass a threshold")
        return self.thresholds.get(rule)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["thresholds"] = self.thresholds.to_dict() if self.thresholds else None
        values["input_size"] = list(self.input_size)
        values["preprocess_version"] = self.preprocess_version
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelCard:
        data = dict(values)
        data.pop("input_size", None)
        data.pop("preprocess_version", None)
        thresholds = data.get("thresholds")
        data["thresholds"] = CalibratedThresholds.from_dict(thresholds) if thresholds else None
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ArtifactError(f"not a model card: {exc}") from None

    def with_changes(self, **changes: Any) -> ModelCard:
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        source = Path(path)
        try:
            values = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"cannot read model card {source}: {exc}") from None
        return cls.from_dict(values)

    def path_of(self, role: str, card_path: str | Path) -> Path:
        """Absolute path of the file that plays ``role``, checked against its recorded sha256."""
        if role not in self.files:
            raise ArtifactError(f"model card has no {role!r} file (has: {sorted(self.files)})")
        path = Path(card_path).parent / self.files[role]
        if not path.is_file():
            raise ArtifactError(f"{path} is missing")
        expected = self.sha256.get(self.files[role])
        if expected and sha256_file(path) != expected:
            raise ArtifactError(f"{path} does not match the sha256 recorded in its model card")
        return path


def card_path_for(model: str | Path) -> Path:
    """The card of a model given as a card, a weight file or a folder holding ``model.json``."""
    path = Path(model)
    if path.is_dir():
        for candidate in (path / "model.json", path / "best" / "model.json"):
            if candidate.is_file():
                return candidate
        raise ArtifactError(f"no model.json in {path} (or {path / 'best'})")
    if path.suffix == ".json":
        return path
    candidate = path.with_suffix(".json")
    if candidate.is_file():
        return candidate
    raise ArtifactError(f"no model card beside {path} (expected {candidate})")


def model_tag_of(card: ModelCard) -> str:
    """``<model name>:<first 12 hex digits of the embedder file's sha256>``."""
    embedder = card.files.get("embedder") or card.files.get("weights")
    digest = card.sha256.get(embedder) if embedder else None
    if not digest:  # no recorded embedder hash: fall back to every recorded file hash
        digest = hashlib.sha256(json.dumps(sorted(card.sha256.items())).encode()).hexdigest()
    return f"{card.name}:{digest[:12]}"
