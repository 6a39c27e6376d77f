"""The training configuration: :class:`TrainConfig` (every setting of a training, with its default), read from a
TOML or JSON file (keys = fields, or under a ``[train]`` table; relative paths relative to the file) and overridden by
command-line flags ``--field-name value``, one per field. :data:`RESUME_KEYS` are the settings a resumed run must
share with the checkpoint it resumes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpladeError


@dataclass
class TrainConfig:
    model: str = ""  # warm start: encoder card name, model directory or Hugging Face id
    output_dir: str = ""
    queries: str = ""  # topics: BEIR folder, queries.jsonl, TSV, TREC
    corpus: str = ""
    pools: str = ""  # from `mine`
    scores: str = ""  # from `teach` (JSONL or TREC run)
    variant: str = ""  # full | lexical | doc; empty: the warm start's card
    n_negatives: int = 8
    batch_size: int = 20  # queries per optimizer step, over all ranks and accumulation steps
    grad_accum: int = 1
    steps: int = 0  # optimizer steps; 0: from epochs
    epochs: float = 5.0
    lr: float = 2e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.01
    warmup_steps: int = -1  # >= 0 overrides warmup_ratio
    max_grad_norm: float = 1.0  # <= 0: no clipping
    kl_weight: float = 0.99
    margin_mse_weight: float = 0.05
    lambda_d: float = 0.02
    lambda_q: float = 0.01
    reg_T: int = 30000
    query_max_length: int = 128  # training lengths (naver HF baseline: 128)
    doc_max_length: int = 128
    card_query_max_length: int = 0  # lengths written to the card for inference; 0: the warm start's card
    card_doc_max_length: int = 0
    scale: float = 0.0  # quantisation scale for the card; 0: the warm start's card (51.2)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    device: str = "auto"
    seed: int = 42
    dropout: float = -1.0  # >= 0 sets every dropout probability; < 0 keeps the model's
    save_every: int = 0  # checkpoint every N steps; 0: only at the end
    keep_checkpoints: int = 2
    threads: int = 0  # torch CPU threads; 0: torch's default
    resume: bool = True
    progress: bool = True

    def validate(self) -> None:
        for name in ("model", "output_dir", "queries", "corpus", "pools", "scores"):
            if not getattr(self, name):
                raise SpladeError(f"training config: `{name}` is required (config file key or --{name.replace('_', '-')}).")
        if self.variant and self.variant not in ("full", "lexical", "doc"):
            raise SpladeError(f"training config: variant {self.variant!r} is not one of full, lexical, doc.")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise SpladeError(f"training config: precision {self.precision!r} is not one of auto, fp32, bf16, fp16.")
        if self.batch_size < 1 or self.grad_accum < 1 or self.n_negatives < 1:
            raise SpladeError("training config: batch_size, grad_accum and n_negatives must be >= 1.")
        if self.steps <= 0 and self.epochs <= 0:
            raise SpladeError("training config: set steps > 0 or epochs > 0.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Fields whose change would make resuming mix two different trainings.
RESUME_KEYS = ("seed", "batch_size", "n_negatives", "pools", "scores", "variant", "steps", "epochs", "lr")


def read_config_file(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SpladeError(f"training config {path} does not exist.")
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            data = tomllib.loads(path.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise SpladeError(f"cannot parse training config {path}: {e}.") from None
    if "train" in data and isinstance(data["train"], dict):
        data = data["train"]
    base = path.resolve().parent
    for key in ("model", "output_dir", "queries", "corpus", "pools", "scores"):  # relative to the config file
        value = data.get(key)
        if isinstance(value, str) and value.startswith(("./", "../")):
            data[key] = str((base / value).resolve())
    return data


def make_config(values: dict) -> TrainConfig:
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SpladeError(f"training config: unknown key(s) {unknown}; allowed: {sorted(known)}.")
    cfg = TrainConfig()
    for key, value in values.items():
        default = getattr(cfg, key)
        try:
            if isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            else:
                value = str(value)
        except (TypeError, ValueError):
            raise SpladeError(f"training config: {key} = {value!r} is not a {type(default).__name__}.") from None
        setattr(cfg, key, value)
    return cfg


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` plus one ``--field-name`` flag per :class:`TrainConfig` field (all default to unset)."""
    parser.add_argument("--config", help="TOML or JSON training config; flags override its values")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction)
        else:
            parser.add_argument(flag, dest=f.name, default=None, type=type(f.default), metavar=f.name.upper())


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values: dict = read_config_file(args.config) if getattr(args, "config", None) else {}
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = v
    return make_config(values)
