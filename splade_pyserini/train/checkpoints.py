"""Checkpoint I/O of a training: model folders (Hugging Face files, the encoder card, the sentence-transformers
layout), the checkpoints under ``output_dir/checkpoints/step-NNNNNNN`` (each a complete model folder plus optimizer,
scheduler and RNG states, written atomically), the final model written into ``output_dir`` itself, and loading the
optimizer state back (tensors and plain data only).

The trained model's card (:func:`card_for`) and the training state file carry what a vectors or index record later
says of the model: the card's variant, scale and lengths under the record's own key names, and the seed that
:func:`splade_pyserini.provenance.training_seed` reads from :data:`STATE_FILE` (the provenance module's
``TRAIN_STATE_FILE``: one name for both).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import SpladeError
from ..provenance import TRAIN_STATE_FILE as STATE_FILE
from .config import TrainConfig

CHECKPOINT_DIR = "checkpoints"


def card_for(cfg: TrainConfig, init_card, variant: str, name: str):
    """The trained model's encoder card: the warm start's lengths and scale unless the config sets them."""
    from ..cards import EncoderCard

    return EncoderCard(
        name=name, model=".", variant=variant,
        query_max_length=cfg.card_query_max_length or init_card.query_max_length,
        doc_max_length=cfg.card_doc_max_length or init_card.doc_max_length,
        scale=cfg.scale or init_card.scale,
        description=f"fine-tuned by splade-pyserini train from {init_card.name}",
    )


def save_model_dir(directory: Path, model, tokenizer, card) -> None:
    from ..cards import CARD_FILE
    from ..st_bridge import write_sentence_transformers_files

    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(str(directory))
        tokenizer.save_pretrained(str(directory))
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
    (directory / CARD_FILE).write_text(card.to_toml())
    write_sentence_transformers_files(directory, card, tokenizer)  # SparseEncoder(directory) loads it too


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    root = Path(output_dir) / CHECKPOINT_DIR
    found = []
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).is_file():
                try:
                    found.append((int(p.name[5:]), p))
                except ValueError:
                    pass
    return sorted(found)


def write_final(output_dir: Path, model, tokenizer, card, state: dict) -> None:
    """The trained model into ``output_dir`` itself, each file replaced atomically."""
    from ..fileio import OWNER_FILE, atomic_directory
    from ..st_bridge import ST_ENTRIES
    from .model_card import write_model_card

    tmp_name = output_dir / ".final"
    with atomic_directory(tmp_name, "model") as tmp:
        save_model_dir(tmp, model, tokenizer, card)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        (tmp / "train_log.jsonl").write_text("".join(json.dumps(h) + "\n" for h in state["history"]))
        write_model_card(tmp)  # README.md for the Hugging Face Hub
    for stale in ("pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json") + ST_ENTRIES:
        if (output_dir / stale).is_dir() and not (tmp_name / stale).exists():
            shutil.rmtree(output_dir / stale)
        elif (output_dir / stale).exists() and not (tmp_name / stale).exists():
            (output_dir / stale).unlink()
    for f in sorted(tmp_name.iterdir()):
        if f.name == OWNER_FILE:  # output_dir keeps its own record (a training output)
            continue
        if f.is_dir() and (output_dir / f.name).is_dir():  # a module folder of the sentence-transformers layout
            shutil.rmtree(output_dir / f.name)
        os.replace(f, output_dir / f.name)
    shutil.rmtree(tmp_name, ignore_errors=True)


def load_state(path: Path, device):
    """Optimizer, scheduler, scaler and RNG states of a checkpoint: tensors and plain data only
    (``weights_only``), so a planted file cannot run code; anything else is refused with one line."""
    import torch

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise SpladeError(f"refusing to resume from {path}: it holds more than tensors and plain data ({first}); "
                          "start over with --no-resume or another output_dir.") from None


def save_checkpoint(output_dir: Path, step: int, model, tokenizer, card, extra: dict, state: dict, keep: int) -> None:
    """Checkpoint ``step`` (model folder, ``extra`` states in ``optimizer.pt``, the state file), atomically; only
    the newest ``keep`` checkpoints stay."""
    import torch

    from ..fileio import atomic_directory

    with atomic_directory(Path(output_dir) / CHECKPOINT_DIR / f"step-{step:07d}", "checkpoint") as tmp:
        save_model_dir(tmp, model, tokenizer, card)
        torch.save(extra, tmp / "optimizer.pt")
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    for _, old in list_checkpoints(output_dir)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)
