"""Loading local Hugging Face models for the evaluation baselines: offline, on the chosen device, bf16 on GPU."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SpladeError


def pick_device(device: str = "auto"):
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; any other value is passed to torch."""
    import torch

    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SpladeError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpladeError(f"device {device} asked for, but torch sees no GPU; use --device cpu or auto.")
    return dev


def inference_dtype(device):
    """bf16 on a GPU that supports it, else fp32."""
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _check_dir(model_dir: str | os.PathLike, what: str) -> Path:
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise SpladeError(f"{what} model {model_dir} is no local folder; download it first (e.g. "
                          "`huggingface-cli download NAME --local-dir DIR`) and pass that folder.")
    if not (path / "config.json").is_file():
        raise SpladeError(f"{what} model folder {path} has no config.json; pass a Hugging Face model folder.")
    return path


def load_tokenizer(path: Path, what: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # transformers raises OSError/ValueError/… for a broken folder
        raise SpladeError(f"{what} model folder {path}: its tokenizer cannot be loaded "
                          f"({type(e).__name__}: {str(e)[:160]}); it needs tokenizer.json or vocab files.") from None


def load_model(model_dir: str | os.PathLike, auto_class: str, what: str, device: str = "auto"):
    """(tokenizer, model in eval mode on its device, device) from a local folder; SpladeError when impossible."""
    import transformers

    path = _check_dir(model_dir, what)
    tokenizer = load_tokenizer(path, what)
    dev = pick_device(device)
    cls = getattr(transformers, auto_class)
    try:
        model = cls.from_pretrained(str(path), local_files_only=True, dtype=inference_dtype(dev))
    except Exception as e:
        raise SpladeError(f"{what} model folder {path} cannot be loaded as {auto_class} "
                          f"({type(e).__name__}: {str(e)[:160]}).") from None
    model.to(dev)
    model.eval()
    return tokenizer, model, dev


def max_length_for(tokenizer, model, wanted: int) -> int:
    """``wanted`` capped by the tokenizer's and the model's position limits."""
    limits = [int(wanted)]
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml < 1_000_000:
        limits.append(tml)
    mpe = getattr(model.config, "max_position_embeddings", None)
    if isinstance(mpe, int) and mpe > 0:
        limits.append(mpe)
    return min(limits)
