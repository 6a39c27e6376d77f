"""sentence-transformers ``SparseEncoder`` folders, both ways, without importing sentence-transformers.

Reading (:func:`card_from_folder`): a folder with ``modules.json`` becomes an :class:`~.cards.EncoderCard` when its
modules are ones this package computes exactly:

* ``full``: a fill-mask ``Transformer`` (or the legacy ``MLMTransformer``) followed by ``SpladePooling`` with max
  pooling and the ``relu`` activation (``log1p(relu(·))``: SPLADE);
* ``doc`` (inference-free, as the ``-doc`` models): a ``Router`` whose query route is one ``SparseStaticEmbedding``
  (the query is the set of its tokens, each weighted by the module's static weight: ``query_weights`` on the card
  unless every non-special token weighs 1) and whose document route is the SPLADE pair above;
* ``lexical``: a ``Router`` whose query route is that SPLADE pair followed by a ``SparseStaticEmbedding`` of unit
  weights (the query's weights kept on its own tokens only) and whose document route is the same pair.

Truncation lengths are ST's: ``query_length``/``document_length`` of the Transformer's ``sentence_bert_config.json``,
else its ``max_seq_length`` (or ``processor_kwargs.model_max_length``), else the tokenizer's ``model_max_length``
capped at the model's ``max_position_embeddings``; the static query side truncates at its tokenizer's
``model_max_length`` without special tokens. Anything else — sum pooling, the ``log1p_relu`` activation, a dense
``Transformer``, ``Dense``, ``Normalize``, ``SparseAutoEncoder`` (CSR), prompts, ``max_active_dims`` — is refused
with one line naming the module or setting.

Writing (:func:`write_sentence_transformers_files`): the files that make a Hugging Face model folder written by
``splade-pyserini train`` load in ``SparseEncoder(folder)`` with the same vectors, beside the files Pyserini and
Anserini use (the MLM stays at the top of the folder; a Router's Transformer folder holds hard links to it).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import SpladeError

MODULES_FILE = "modules.json"
MODEL_CONFIG_FILE = "config_sentence_transformers.json"
TRANSFORMER_CONFIG = "sentence_bert_config.json"
ROUTER_CONFIG = "router_config.json"
LEGACY_TRANSFORMER_CONFIGS = ("sentence_roberta_config.json", "sentence_distilbert_config.json",
                              "sentence_camembert_config.json", "sentence_albert_config.json",
                              "sentence_xlm-roberta_config.json")
NO_TRUNCATION = 1_000_000  # a tokenizer without model_max_length (transformers' "very large integer")

TYPES = {
    "Transformer": "sentence_transformers.base.modules.transformer.Transformer",
    "SpladePooling": "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling",
    "SparseStaticEmbedding": "sentence_transformers.sparse_encoder.modules.sparse_static_embedding.SparseStaticEmbedding",
    "Router": "sentence_transformers.base.modules.router.Router",
}
# What write_sentence_transformers_files may write at the top of a folder, over all variants.
ST_ENTRIES = (MODULES_FILE, MODEL_CONFIG_FILE, TRANSFORMER_CONFIG, ROUTER_CONFIG, "1_SpladePooling",
              "document_0_Transformer", "document_1_SpladePooling", "query_0_SparseStaticEmbedding",
              "query_2_SparseStaticEmbedding")
FILL_MASK = {"transformer_task": "fill-mask",
             "modality_config": {"text": {"method": "forward", "method_output_name": "logits"}},
             "module_output_name": "token_embeddings"}


def is_st_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / MODULES_FILE).is_file()


def _read_json(path: Path, default=None):
    if default is not None and not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SpladeError(f"cannot read {path}: {str(e).splitlines()[0][:160]}; is it a complete sentence-transformers "
                          "folder?") from None


def _refuse(folder: Path, module: str, why: str) -> SpladeError:
    return SpladeError(f"sentence-transformers folder {folder}: module {module} {why}; splade-pyserini represents "
                       "only SPLADE (a fill-mask Transformer + SpladePooling max/relu, with an optional "
                       "SparseStaticEmbedding query side): use sentence-transformers itself for this model.")


@dataclass(frozen=True)
class _Module:
    name: str  # its folder name inside the model (``""``: the top)
    kind: str  # the class name: Transformer, MLMTransformer, SpladePooling, SparseStaticEmbedding, Router …
    path: Path

    @property
    def label(self) -> str:
        return f"{self.name or '(top)'} ({self.kind})"


def _module(folder: Path, name: str, type_name: str) -> _Module:
    if os.path.isabs(name) or ".." in Path(name).parts:
        raise SpladeError(f"sentence-transformers folder {folder}: module path {name!r} leaves the folder.")
    return _Module(name, str(type_name).rsplit(".", 1)[-1], folder / name)


# --- reading ------------------------------------------------------------------------------------------------------
def _transformer_lengths(folder: Path, module: _Module) -> tuple[int, int]:
    """(query, document) truncation lengths, special tokens included, of a fill-mask Transformer module."""
    config = {}
    for name in (TRANSFORMER_CONFIG,) + LEGACY_TRANSFORMER_CONFIGS:
        if (module.path / name).is_file():
            config = _read_json(module.path / name)
            break
    task = config.get("transformer_task", "fill-mask" if module.kind == "MLMTransformer" else "feature-extraction")
    if task != "fill-mask":
        raise _refuse(folder, module.label, f"runs the transformer task {task!r} (a dense embedding, not MLM logits)")
    output = config.get("module_output_name", "token_embeddings")
    modality = config.get("modality_config", FILL_MASK["modality_config"])
    if output != "token_embeddings" or modality != FILL_MASK["modality_config"]:
        raise _refuse(folder, module.label, f"has a custom output ({output}, {modality})")
    for key in ("processing_kwargs", "query_expansion"):
        if config.get(key):
            raise _refuse(folder, module.label, f"sets {key} = {config[key]}")
    if config.get("do_lower_case") and not _lowercases(module.path):
        raise _refuse(folder, module.label, "sets do_lower_case for a tokenizer that keeps case")
    if not (module.path / "config.json").is_file():
        raise SpladeError(f"sentence-transformers folder {folder}: module {module.label} has no config.json (the "
                          "masked-language model); the folder is incomplete.")
    processor = config.get("processor_kwargs") or config.get("tokenizer_args") or {}
    length = processor.get("model_max_length") or config.get("max_seq_length")
    if not length:
        tokenizer = _read_json(module.path / "tokenizer_config.json", default={})
        length = min(int(tokenizer.get("model_max_length") or NO_TRUNCATION), NO_TRUNCATION)
        positions = _read_json(module.path / "config.json").get("max_position_embeddings", -1)
        if positions and positions != -1:
            length = min(length, int(positions))
    length = int(length)
    return int(config.get("query_length") or length), int(config.get("document_length") or length)


def _lowercases(path: Path) -> bool:
    normalizer = json.dumps(_read_json(path / "tokenizer.json", default={}).get("normalizer"))
    return '"lowercase": true' in normalizer or '"Lowercase"' in normalizer


def _check_pooling(folder: Path, module: _Module) -> None:
    config = _read_json(module.path / "config.json", default={})
    if config.get("pooling_strategy", "max") != "max":
        raise _refuse(folder, module.label, f"pools by {config['pooling_strategy']!r} (only 'max' is SPLADE here)")
    if config.get("activation_function", "relu") != "relu":
        raise _refuse(folder, module.label, f"uses the activation {config['activation_function']!r} (only 'relu', "
                                            "i.e. log1p(relu(x)), is SPLADE here)")


def _splade_pair(folder: Path, modules: list[_Module]) -> _Module | None:
    """The Transformer of a [fill-mask Transformer, SpladePooling max/relu] pair (checked), None if not that shape."""
    if len(modules) < 2 or modules[0].kind not in ("Transformer", "MLMTransformer") or modules[1].kind != "SpladePooling":
        return None
    _check_pooling(folder, modules[1])
    return modules[0]


def _special_ids(tokenizer_json: dict) -> set[int]:
    return {int(t["id"]) for t in tokenizer_json.get("added_tokens", []) if t.get("special")}


def _special_tokens_added(tokenizer_json: dict) -> int:
    """How many special tokens the tokenizer adds around one text ([CLS] … [SEP]: 2)."""
    def count(proc) -> int:
        if not proc:
            return 0
        kind = proc.get("type")
        if kind == "TemplateProcessing":
            return sum(1 for piece in proc.get("single", []) if "SpecialToken" in piece)
        if kind in ("BertProcessing", "RobertaProcessing"):
            return 2
        if kind == "Sequence":
            return sum(count(p) for p in proc.get("processors", []))
        return 0

    return count(tokenizer_json.get("post_processor"))


def _static_weights_file(folder: Path, module: _Module) -> Path:
    config = _read_json(module.path / "config.json", default={})
    path = config.get("path")
    if path:
        for candidate in (module.path / path, Path(path)):
            if candidate.is_file() and candidate.suffix == ".json":
                return candidate.resolve()
        raise SpladeError(f"sentence-transformers folder {folder}: module {module.label} names the weights {path}, "
                          "which are not in the folder; download the model completely.")
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (module.path / name).is_file():
            return (module.path / name).resolve()
    raise SpladeError(f"sentence-transformers folder {folder}: module {module.label} has no weights "
                      "(model.safetensors); the folder is incomplete.")


def read_static_weights(path: str | os.PathLike, tokenizer, size: int):
    """The float32 ``[size]`` static weights of a ``SparseStaticEmbedding`` (its safetensors or ``.bin`` file, or
    an ``{token: weight}`` JSON file mapped to ids by ``tokenizer`` as sentence-transformers does)."""
    import numpy as np

    path = Path(path)
    if path.suffix == ".json":
        table = _read_json(path)
        weights = np.zeros(size, dtype=np.float32)
        ids = tokenizer.convert_tokens_to_ids(list(table))
        for i, w in zip(ids, table.values()):
            weights[i] = np.float32(w)
        return weights
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        tensors = load_file(str(path))
    else:
        import torch

        tensors = {k: v.numpy() for k, v in torch.load(str(path), map_location="cpu", weights_only=True).items()}
    weights = tensors.get("weight")
    if weights is None or weights.ndim != 1 or len(weights) != size:
        shape = None if weights is None else tuple(weights.shape)
        raise SpladeError(f"static query weights {path}: expected a `weight` vector of {size} entries (the "
                          f"vocabulary), found {shape}.")
    return np.ascontiguousarray(weights, dtype=np.float32)


def _static_query_side(folder: Path, module: _Module, transformer: _Module, lexical: bool = False) -> tuple[str, int]:
    """(query_weights for the card — empty when every non-special token weighs 1 — and the query truncation length
    with special tokens) of a SparseStaticEmbedding that shares ``transformer``'s vocabulary. ``lexical``: the module
    follows the SPLADE pooling, where the input's special tokens are present: they must weigh 0 there."""
    config = _read_json(module.path / "config.json", default={})
    unknown = set(config) - {"frozen", "path"}
    if unknown:
        raise _refuse(folder, module.label, f"has settings {sorted(unknown)} this package does not know")
    static_tok = _read_json(module.path / "tokenizer.json", default={})
    model_tok = _read_json(transformer.path / "tokenizer.json", default={})
    if any(static_tok.get(k) != model_tok.get(k) for k in ("model", "normalizer", "pre_tokenizer")) or not static_tok:
        raise _refuse(folder, module.label, f"tokenises with another vocabulary than {transformer.label}")
    weights_file = _static_weights_file(folder, module)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(transformer.path))
    size = int(_read_json(transformer.path / "config.json").get("vocab_size", len(tokenizer)))
    weights = read_static_weights(weights_file, tokenizer, size)
    plain = weights.copy()
    special = sorted(i for i in _special_ids(model_tok) if i < size)
    if lexical and (weights[special] != 0).any():
        raise _refuse(folder, module.label, "keeps the special tokens' weights ([CLS], [SEP] …), which the lexical "
                                            "variant drops")
    plain[special] = 1.0
    tok_config = _read_json(module.path / "tokenizer_config.json", default={})
    length = min(int(tok_config.get("model_max_length") or NO_TRUNCATION), NO_TRUNCATION)
    return ("" if bool((plain == 1.0).all()) else str(weights_file)), length + _special_tokens_added(model_tok)


def _check_model_config(folder: Path) -> None:
    config = _read_json(folder / MODEL_CONFIG_FILE, default={})
    if config.get("model_type", "SparseEncoder") != "SparseEncoder":
        raise SpladeError(f"{folder} is a sentence-transformers {config['model_type']} folder, not a SparseEncoder; "
                          "splade-pyserini loads SPLADE (sparse) models only.")
    prompts = {k: v for k, v in (config.get("prompts") or {}).items() if v}
    if prompts:
        raise SpladeError(f"sentence-transformers folder {folder}: {MODEL_CONFIG_FILE} sets prompts {prompts}, "
                          "which splade-pyserini does not prepend; use sentence-transformers itself for this model.")
    if config.get("max_active_dims"):
        raise SpladeError(f"sentence-transformers folder {folder}: {MODEL_CONFIG_FILE} keeps only the top "
                          f"max_active_dims = {config['max_active_dims']} weights, which splade-pyserini does not do.")
    if config.get("similarity_fn_name") not in (None, "dot"):
        raise SpladeError(f"sentence-transformers folder {folder}: {MODEL_CONFIG_FILE} scores by "
                          f"{config['similarity_fn_name']!r}; Lucene impact search is a dot product.")


def _router(folder: Path, module: _Module) -> dict[str, list[_Module]]:
    config = _read_json(module.path / ROUTER_CONFIG, default={}) or _read_json(module.path / "config.json", default={})
    if "types" not in config or "structure" not in config:
        raise SpladeError(f"sentence-transformers folder {folder}: module {module.label} has no {ROUTER_CONFIG}; "
                          "the folder is incomplete.")
    if (config.get("parameters") or {}).get("route_mappings"):
        raise _refuse(folder, module.label, "routes by custom route_mappings")
    types = config["types"]
    return {route: [_module(module.path, name, types[name]) for name in names]
            for route, names in config["structure"].items()}


def card_from_folder(folder: str | os.PathLike):
    """The :class:`~.cards.EncoderCard` of a sentence-transformers SparseEncoder folder (refused with one line when
    its modules are not ones this package computes)."""
    folder = Path(folder).resolve()
    card = _card(folder)
    _check_model_config(folder)  # after the modules, so that a module is named first (CSR also sets max_active_dims)
    return card


def _card(folder: Path):
    from .cards import EncoderCard

    entries = _read_json(folder / MODULES_FILE)
    if not isinstance(entries, list) or not entries:
        raise SpladeError(f"{folder / MODULES_FILE} lists no modules; is it a sentence-transformers folder?")
    modules = [_module(folder, e.get("path", ""), e.get("type", "?"))
               for e in sorted(entries, key=lambda e: int(e.get("idx", 0)))]
    description = "sentence-transformers SparseEncoder"
    if modules[0].kind in ("Router", "Asym"):
        if len(modules) > 1:
            raise _refuse(folder, modules[1].label, "follows the Router")
        routes = _router(folder, modules[0])
        query, document = routes.get("query"), routes.get("document")
        if query is None or document is None or set(routes) != {"query", "document"}:
            raise _refuse(folder, modules[0].label, f"has the routes {sorted(routes)}, not query and document")
        transformer = _splade_pair(folder, document)
        if transformer is None or len(document) != 2:
            bad = next((m for m in document if m.kind not in ("Transformer", "MLMTransformer", "SpladePooling")),
                       document[-1])
            raise _refuse(folder, bad.label, "is not part of a SPLADE document side")
        q_len, d_len = _transformer_lengths(folder, transformer)
        if len(query) == 1 and query[0].kind == "SparseStaticEmbedding":
            weights, q_len = _static_query_side(folder, query[0], transformer)
            return EncoderCard(name=folder.name, model=str(transformer.path), variant="doc", query_max_length=q_len,
                               doc_max_length=d_len, query_weights=weights,
                               description=f"{description} (inference-free: static query side)")
        same = _splade_pair(folder, query)
        if same is None or same.path != transformer.path:
            bad = next((m for m in query if m.kind not in ("Transformer", "MLMTransformer", "SpladePooling")), query[0])
            raise _refuse(folder, bad.label, "is not part of a query side this package computes")
        if len(query) == 2:
            return EncoderCard(name=folder.name, model=str(transformer.path), query_max_length=q_len,
                               doc_max_length=d_len, description=description)
        if len(query) == 3 and query[2].kind == "SparseStaticEmbedding":
            weights, _ = _static_query_side(folder, query[2], transformer, lexical=True)
            if weights:
                raise _refuse(folder, query[2].label, "weights the query's own tokens (only unit weights, the "
                                                      "lexical variant, are represented)")
            return EncoderCard(name=folder.name, model=str(transformer.path), variant="lexical",
                               query_max_length=q_len, doc_max_length=d_len,
                               description=f"{description} (lexical: no query expansion)")
        raise _refuse(folder, query[-1].label, "follows the SPLADE pooling on the query side")
    transformer = _splade_pair(folder, modules)
    if transformer is None:
        bad = next((m for m in modules if m.kind not in ("Transformer", "MLMTransformer", "SpladePooling")), modules[0])
        raise _refuse(folder, bad.label, "is not a SPLADE module" if bad is not modules[0] or len(modules) > 1
                      else "stands alone (SPLADE needs a fill-mask Transformer and SpladePooling)")
    if len(modules) > 2:
        raise _refuse(folder, modules[2].label, "follows the SPLADE pooling")
    q_len, d_len = _transformer_lengths(folder, transformer)
    return EncoderCard(name=folder.name, model=str(transformer.path), query_max_length=q_len, doc_max_length=d_len,
                       description=description)


# --- writing ------------------------------------------------------------------------------------------------------
def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _link_model(src: Path, dst: Path) -> None:
    """``dst`` holding the model and tokenizer files of ``src`` (hard links; copies where links fail)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and (f.suffix in (".safetensors", ".bin", ".txt", ".model")
                            or f.name in ("config.json", "tokenizer.json", "tokenizer_config.json",
                                          "special_tokens_map.json", "model.safetensors.index.json")):
            try:
                os.link(f, dst / f.name)
            except OSError:
                shutil.copy2(f, dst / f.name)


def _static_module(folder: Path, name: str, weights, max_length: int) -> None:
    """A SparseStaticEmbedding module folder: ``weights`` ([vocab] float32) and the tokenizer of ``folder``
    truncating at ``max_length`` tokens (no special tokens on that side)."""
    from safetensors.numpy import save_file

    path = folder / name
    path.mkdir(parents=True, exist_ok=True)
    for f in ("tokenizer.json", "special_tokens_map.json", "vocab.txt"):
        if (folder / f).is_file():
            shutil.copy2(folder / f, path / f)
    tok_config = _read_json(folder / "tokenizer_config.json", default={})
    tok_config["model_max_length"] = max_length
    tok_config.pop("max_length", None)
    _write_json(path / "tokenizer_config.json", tok_config)
    _write_json(path / "config.json", {"frozen": True})
    save_file({"weight": weights}, str(path / "model.safetensors"))


def write_sentence_transformers_files(folder: str | os.PathLike, card, tokenizer) -> list[str]:
    """Make the Hugging Face model folder ``folder`` (config.json, weights and ``tokenizer`` at its top, as
    ``save_pretrained`` writes them) load in ``SparseEncoder(folder)`` with the vectors of ``card`` (variant and
    lengths); returns the names written at the top of the folder."""
    import numpy as np

    folder = Path(folder)
    vocab_size = int(_read_json(folder / "config.json")["vocab_size"])
    special = sorted(i for i in set(tokenizer.all_special_ids) if i < vocab_size)
    n_special = tokenizer.num_special_tokens_to_add()
    lengths = {"query_length": card.query_max_length, "document_length": card.doc_max_length}
    pooling = {"pooling_strategy": "max", "activation_function": "relu", "embedding_dimension": vocab_size}
    written = [MODULES_FILE, MODEL_CONFIG_FILE]
    _write_json(folder / MODEL_CONFIG_FILE, {"model_type": "SparseEncoder", "prompts": {"query": "", "document": ""},
                                             "default_prompt_name": None, "similarity_fn_name": "dot"})
    if card.variant == "full":
        _write_json(folder / TRANSFORMER_CONFIG, {**FILL_MASK, **lengths})
        _write_json(folder / "1_SpladePooling" / "config.json", pooling)
        _write_json(folder / MODULES_FILE, [
            {"idx": 0, "name": "0", "path": "", "type": TYPES["Transformer"]},
            {"idx": 1, "name": "1", "path": "1_SpladePooling", "type": TYPES["SpladePooling"]}])
        return written + [TRANSFORMER_CONFIG, "1_SpladePooling"]
    ones = np.ones(vocab_size, dtype=np.float32)
    ones[special] = 0.0  # as this package's bag of words: special tokens never count
    transformer, pool = "document_0_Transformer", "document_1_SpladePooling"
    if card.variant == "doc":
        static = "query_0_SparseStaticEmbedding"
        weights = ones
        if card.query_weights:
            weights = read_static_weights(card.query_weights, tokenizer, vocab_size).copy()
            weights[special] = 0.0
        _static_module(folder, static, weights, card.query_max_length - n_special)
        structure = {"query": [static], "document": [transformer, pool]}
        transformer_config = {**FILL_MASK, "document_length": card.doc_max_length}
    else:  # lexical: the query's SPLADE weights times the bag of its own (non-special) tokens
        static = "query_2_SparseStaticEmbedding"
        _static_module(folder, static, ones, card.query_max_length)
        structure = {"query": [transformer, pool, static], "document": [transformer, pool]}
        transformer_config = {**FILL_MASK, **lengths}
    _link_model(folder, folder / transformer)
    _write_json(folder / transformer / TRANSFORMER_CONFIG, transformer_config)
    _write_json(folder / pool / "config.json", pooling)
    _write_json(folder / ROUTER_CONFIG, {
        "types": {transformer: TYPES["Transformer"], pool: TYPES["SpladePooling"],
                  static: TYPES["SparseStaticEmbedding"]},
        "structure": structure,
        "parameters": {"default_route": "document", "allow_empty_key": True, "route_mappings": {}}})
    _write_json(folder / MODULES_FILE, [{"idx": 0, "name": "0", "path": "", "type": TYPES["Router"]}])
    return written + [ROUTER_CONFIG, transformer, pool, static]
