"""The Hugging Face model card (``README.md``) of a trained checkpoint folder.

YAML front matter for the Hub (base model, library, tags, licence, pipeline tag), then what the folder is: how to
use it (splade-pyserini, Pyserini, sentence-transformers), the training recipe with its losses and weights, the
data, the loss log, measured metrics when an experiment measured them (:mod:`.experiment` rewrites the card with
them), and the encoder card. Publishing the folder is then one upload::

    huggingface_hub.upload_folder(repo_id="me/my-splade", folder_path="out/", ignore_patterns=["checkpoints/*"])
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

from ..errors import SpladeError

README = "README.md"
TAGS = ("sentence-transformers", "sparse-encoder", "sparse", "splade", "learned-sparse-retrieval", "splade-pyserini",
        "pyserini", "anserini")
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LICENSES = (("Apache License", "apache-2.0"), ("MIT License", "mit"),
             ("Creative Commons Attribution-NonCommercial-ShareAlike 4.0", "cc-by-nc-sa-4.0"))


def _yaml(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string or number is a YAML scalar


def base_license(model_dir: str | os.PathLike | None) -> str:
    """The warm start's licence: its own card's ``license:`` or its LICENSE file; ``other`` when unknown."""
    if not model_dir:
        return "other"
    path = Path(model_dir)
    readme = path / README
    if readme.is_file():
        match = re.search(r"^---\n.*?^license:\s*(\S+)\s*$.*?^---", readme.read_text(errors="replace"), re.S | re.M)
        if match:
            return match.group(1).strip("'\"")
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
        if (path / name).is_file():
            head = (path / name).read_text(errors="replace")[:2000]
            for marker, license_id in _LICENSES:
                if marker in head:
                    return license_id
    return "other"


base_licence = base_license  # deprecated: the British spelling of base_license


def _table(rows: list[tuple[str, str]]) -> str:
    return "\n".join(["| setting | value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows])


def _metrics_section(metrics: dict | None) -> str:
    if not metrics:
        return ("Not measured by the trainer. `python -m splade_pyserini.train.experiment` measures nDCG@10, MAP and "
                "R@100 before and after training and rewrites this section with them.")
    out = []
    for dataset, runs in metrics.items():
        names = list(next(iter(runs.values()))) if runs else []
        out.append(f"**{dataset}**\n")
        out.append("| run | " + " | ".join(names) + " |")
        out.append("| --- |" + " --- |" * len(names))
        for run, values in runs.items():
            out.append(f"| {run} | " + " | ".join(f"{values[n]:.4f}" for n in names) + " |")
        out.append("")
    return "\n".join(out).rstrip()


def model_card(card, state: dict, metrics: dict | None = None) -> str:
    """The README.md text of a checkpoint trained into a folder with encoder card ``card`` and final training
    ``state`` (``train_state.json``); ``metrics``: ``{dataset: {run: {metric: value}}}`` when measured."""
    cfg = state.get("config", {})
    init = state.get("init", {})
    source = str(init.get("model", ""))
    base = source if _HF_ID.match(source) and not source.startswith("embedded:") else None
    front = ["---"]
    if base:
        front.append(f"base_model: {_yaml(base)}")
    front += ["library_name: sentence-transformers", "pipeline_tag: feature-extraction",
              f"license: {_yaml(base_license(init.get('model_dir')))}", "tags:"]
    front += [f"- {_yaml(t)}" for t in TAGS] + ["---", ""]
    hist = state.get("history", [])
    first, last = (hist[0], hist[-1]) if hist else ({}, {})
    logged = [k for k in ("loss", "kl", "margin_mse", "flops", "l1_q", "L0_d", "L0_q") if k in last]
    variant = {"full": "full (queries and documents expanded)",
               "lexical": "lexical (query weights only on the query's own tokens)",
               "doc": "doc (inference-free: a query is the bag of its tokens, weight 1)"}[card.variant]
    recipe = _table([
        ("warm start", f"`{init.get('card', '?')}`" + (f" ([{base}](https://huggingface.co/{base}))" if base else "")),
        ("variant", variant),
        ("objective", f"{cfg.get('kl_weight')} × KL + {cfg.get('margin_mse_weight')} × MarginMSE + λd(t) × "
                      "FLOPS(documents) + λq(t) × L1(queries)"),
        ("regularisation", f"λd = {cfg.get('lambda_d')}, λq = {cfg.get('lambda_q')}, λ(t) = λ · min(1, (t / "
                           f"{cfg.get('reg_T')})²)" + (" (no query L1: no query encoder)" if card.variant == "doc" else "")),
        ("optimizer steps", f"{state.get('step')} of {state.get('total_steps')} (warm-up {state.get('warmup_steps')})"),
        ("batch", f"{cfg.get('batch_size')} queries × (1 positive + {cfg.get('n_negatives')} negatives), "
                  f"{state.get('world_size', 1)} process(es), gradient accumulation {cfg.get('grad_accum')}"),
        ("optimizer", f"AdamW, lr {cfg.get('lr')}, weight decay {cfg.get('weight_decay')}, linear schedule, "
                      f"gradient clipping {cfg.get('max_grad_norm')}"),
        ("precision", str(state.get("precision"))),
        ("training lengths", f"queries {cfg.get('query_max_length')}, documents {cfg.get('doc_max_length')} tokens"),
        ("seed", str(cfg.get("seed"))),
    ])
    data = _table([
        ("queries", f"`{Path(str(cfg.get('queries', ''))).name}` ({state.get('training_queries')} used for "
                    f"training, {len(state.get('dropped_queries') or [])} dropped)"),
        ("corpus", f"`{Path(str(cfg.get('corpus', ''))).name}`"),
        ("negative pools", f"`{Path(str(cfg.get('pools', ''))).name}` (`splade-pyserini mine`)"),
        ("teacher scores", f"`{Path(str(cfg.get('scores', ''))).name}` (`splade-pyserini teach`)"),
    ])
    log = "\n".join(["| step | " + " | ".join(logged) + " |", "| --- |" + " --- |" * len(logged)]
                    + [f"| {h.get('step')} | " + " | ".join(f"{h[k]:.4g}" for k in logged) + " |"
                       for h in ([first, last] if first is not last else [first])]) if logged else "(no steps)"
    name = card.name
    body = f"""# {name}

A SPLADE learned sparse retriever fine-tuned by `splade-pyserini train` (the SPLADE-v3 distillation recipe). Each text becomes a sparse vector over the vocabulary, `w_j = max_i log(1 + relu(logit_ij))`;
search is a dot product over a Lucene impact index (Anserini), with weights quantised as `round(w × {card.scale})`.

## Usage

splade-pyserini, Pyserini and Anserini (the folder carries its encoder card, `splade_card.toml`):

```bash
splade-pyserini encode --encoder {name} --corpus COLLECTION --output vectors/
splade-pyserini index  --vectors vectors/ --index index/
splade-pyserini search --index index/ --encoder {name} --topics TOPICS --output run.trec
python -m pyserini.search.lucene --index index/ --topics TOPICS --encoder {name} --impact --output run.trec
```

sentence-transformers (same vectors, to float32 precision):

```python
from sentence_transformers import SparseEncoder

model = SparseEncoder("{name}")
queries = model.encode_query(["what is a boundary layer"])
documents = model.encode_document(["The boundary layer is the thin layer of fluid near a surface."])
print(model.similarity(queries, documents))
```

## Training

{recipe}

Loss log (first and last optimizer step):

{log}

## Data

{data}

## Evaluation

{_metrics_section(metrics)}

## Encoder card (`splade_card.toml`)

```toml
{card.to_toml().rstrip()}
```
"""
    return "\n".join(front) + body


def write_model_card(folder: str | os.PathLike, metrics: dict | None = None) -> Path:
    """(Re)write ``folder/README.md`` from the folder's own ``splade_card.toml`` and ``train_state.json``."""
    from ..cards import CARD_FILE, EncoderCard
    from ..fileio import atomic_write

    folder = Path(folder)
    try:
        card = EncoderCard(**tomllib.loads((folder / CARD_FILE).read_text()))
        state = json.loads((folder / "train_state.json").read_text())
    except (OSError, ValueError, TypeError) as e:
        raise SpladeError(f"{folder} is not a finished training output ({CARD_FILE} and train_state.json): "
                          f"{str(e).splitlines()[0][:160]}.") from None
    with atomic_write(folder / README) as f:
        f.write(model_card(card, state, metrics))
    return folder / README
