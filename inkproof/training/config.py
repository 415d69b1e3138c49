"""The typed training configuration: read from YAML/TOML or flags, saved beside every run."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inkproof.models.losses import DISTANCE_LOSSES, IDENTITY_LOSSES, LOSSES, SKILLED_TERMS, LossName, SkilledTerm
from inkproof.models.registry import ModelConfig, config_from_dict, model_spec
from inkproof.preprocess import PreprocessConfig

Optimizer = Literal["adamw", "sgd", "rmsprop"]
Schedule = Literal["cosine", "step", "constant"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (together with the data on disk)."""

    # data: one or more dataset folders; each is split writer-disjointly on its own
    data: tuple[str, ...] = ()
    data_format: str | None = None
    split: str | None = None  # a saved split manifest (single dataset); else split by fractions
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    split_seed: int = 0
    # model
    model: str = "compact"
    model_settings: dict[str, Any] = field(default_factory=dict)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    init_from: str | None = None  # weights of an earlier run or model file to start from
    # distil from this model (card or run), or from a teacher-embeddings .safetensors file
    teacher: str | None = None
    distill_weight: float = 1.0
    freeze_backbone: bool = False
    # objective
    loss: LossName = "triplet"
    margin: float = 0.3  # contrastive / triplet / CosFace margin
    cosface_scale: float = 30.0
    # CosFace: weight and cosine margin of an extra triplet term whose negatives are the anchor
    # writer's own skilled forgeries (0 disables it)
    skilled_weight: float = 0.0
    skilled_margin: float = 0.2
    # the form of that term: batch-hard "triplet" or "cotuplet" (all positives and all forgeries of
    # the anchor's writer in the batch); cotuplet_scale sharpens the co-tuplet's smooth max / min
    # (also used by the standalone "cotuplet" loss)
    skilled_term: SkilledTerm = "triplet"
    cotuplet_scale: float = 10.0
    positive_margin: float = 0.2  # double-margin contrastive
    negative_margin: float = 0.8
    # sampling
    batch_size: int = 64
    pairs_per_epoch: int = 4096  # pair losses
    pair_mix: tuple[float, float, float] = (0.5, 0.25, 0.25)  # genuine, skilled, random
    writers_per_batch: int = 8  # triplet loss: P writers x K signatures
    samples_per_writer: int = 6
    forgeries_per_writer: int = 2  # skilled forgeries added per writer to a triplet batch
    # pseudo skilled forgeries per writer and batch: the writer's genuine signatures strongly
    # distorted (inkproof.training.pseudo_forgery), labelled as that writer's forgeries
    pseudo_forgeries_per_writer: int = 0
    # identity augmentation: every training writer also appears mirrored (1 = off, 2 = also
    # flipped left to right, 4 = also upside down and both) as a writer of its own, with its
    # forgeries mirrored alike (inkproof.training.data.MIRRORS); identity losses only
    mirrored_writers: int = 1
    batches_per_epoch: int | None = None  # triplet loss; None = one pass over the genuine images
    validation_pairs: int | Literal["all"] = "all"  # per writer and kind
    augment: bool = True
    # optimisation
    epochs: int = 20
    optimizer: Optimizer = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: Schedule = "cosine"
    warmup_epochs: float = 1.0
    step_size: int = 10
    gamma: float = 0.1
    grad_clip: float | None = 5.0
    # run control
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # only where CUDA is used
    channels_last: bool = True  # NHWC memory layout: faster convolutions on CPU and GPU
    num_workers: int | None = None  # None: chosen from the CPU count
    threads: int | None = None  # torch intra-op threads on CPU; None: all cores
    early_stopping: int | None = 8  # epochs without a better validation EER
    save_after: int = 0  # epochs before the best model may be chosen
    tensorboard: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        if isinstance(self.preprocess, dict):
            object.__setattr__(self, "preprocess", PreprocessConfig.from_dict(self.preprocess))
        for name in ("split_fractions", "pair_mix"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        head = self.model_config().head
        if self.loss == "bce" and head != "product":
            raise ValueError(f"loss 'bce' needs head 'product' (model {self.model!r} has head {head!r})")
        if self.loss in DISTANCE_LOSSES and head == "product":
            raise ValueError(f"loss {self.loss!r} needs a distance head (cosine or euclidean), not 'product'")
        if self.loss == "cosface" and head != "cosine":
            raise ValueError(f"loss 'cosface' needs head 'cosine' (model {self.model!r} has head {head!r})")
        if self.skilled_weight < 0 or self.skilled_margin < 0:
            raise ValueError("skilled_weight and skilled_margin must be >= 0")
        if self.skilled_weight and self.loss != "cosface":
            raise ValueError("skilled_weight applies to the cosface loss only")
        if self.loss == "cotuplet" and head != "cosine":
            raise ValueError(f"loss 'cotuplet' needs head 'cosine' (model {self.model!r} has head {head!r})")
        if self.skilled_term not in SKILLED_TERMS:
            raise ValueError(f"skilled_term must be one of {SKILLED_TERMS}, got {self.skilled_term!r}")
        if self.cotuplet_scale <= 0:
            raise ValueError(f"cotuplet_scale must be > 0, got {self.cotuplet_scale}")
        if self.pseudo_forgeries_per_writer < 0:
            raise ValueError("pseudo_forgeries_per_writer must be >= 0")
        if self.mirrored_writers not in (1, 2, 4):
            raise ValueError(f"mirrored_writers must be 1, 2 or 4, got {self.mirrored_writers}")
        if self.mirrored_writers > 1 and self.loss not in IDENTITY_LOSSES:
            raise ValueError("mirrored_writers applies to identity losses (cosface, cotuplet, triplet) only")
        if self.optimizer not in ("adamw", "sgd", "rmsprop"):
            raise ValueError(f"optimizer must be adamw, sgd or rmsprop, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step", "constant"):
            raise ValueError(f"schedule must be cosine, step or constant, got {self.schedule!r}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.batch_size < 2:
            raise ValueError("batch_size must be >= 2")
        if len(self.pair_mix) != 3 or min(self.pair_mix) < 0 or sum(self.pair_mix) <= 0:
            raise ValueError(f"pair_mix must be three non-negative weights, got {self.pair_mix}")
        if self.writers_per_batch < 2 or self.samples_per_writer < 2:
            raise ValueError("triplet batches need writers_per_batch >= 2 and samples_per_writer >= 2")
        if self.positive_margin >= self.negative_margin:
            raise ValueError("positive_margin must be smaller than negative_margin")

    def model_config(self) -> ModelConfig:
        return config_from_dict(self.model, dict(self.model_settings))

    def input_size(self) -> tuple[int, int]:
        return self.preprocess.input_size

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["preprocess"] = self.preprocess.to_dict()
        values["data"] = list(self.data)
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        cleaned = dict(values)
        if isinstance(cleaned.get("data"), str):
            cleaned["data"] = (cleaned["data"],)
        for name in ("split_fractions", "pair_mix"):
            if name in cleaned:
                cleaned[name] = tuple(cleaned[name])
        model_spec(cleaned.get("model", cls.model))  # unknown model names fail early and clearly
        return cls(**cleaned)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a YAML (.yaml/.yml), TOML (.toml) or JSON file."""
    source = Path(path)
    text = source.read_text(encoding="utf-8")
    suffix = source.suffix.lower()
    if suffix == ".toml":
        data: Any = tomllib.loads(text)
    elif suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    elif suffix == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"config file {source} must be .yaml, .yml, .toml or .json")
    if not isinstance(data, dict):
        raise ValueError(f"config file {source} must hold a mapping of settings")
    return data
