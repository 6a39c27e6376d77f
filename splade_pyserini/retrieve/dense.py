"""A dense bi-encoder baseline: exact inner-product search with faiss-cpu.

:func:`dense_search` encodes the corpus and the topics with any local Hugging Face encoder folder (``AutoModel``)
or sentence-transformers folder, pools the last hidden states (``cls``: the first token; ``mean``: the mean over
non-padding tokens), optionally L2-normalises them (cosine similarity), and searches a flat inner-product index
(``faiss.IndexFlatIP``: exact, no training). For a sentence-transformers folder, pooling, normalisation,
the maximum sequence length and the ``query``/``document`` prompts default to what its ``modules.json``,
``1_Pooling/config.json``, ``sentence_bert_config.json`` and ``config_sentence_transformers.json`` say; explicit
arguments win. Documents are read in chunks, sorted by length within a chunk, and encoded in batches (bf16 on
a GPU). Hybrids of its runs with SPLADE's: :mod:`.fusion`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..corpus import read_corpus
from ..errors import SpladeError
from ..runs import Run
from .hfmodels import load_model, max_length_for

POOLINGS = ("cls", "mean")
_ST_MODULES = {"Transformer", "Pooling", "Normalize"}


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise SpladeError(f"{path} cannot be read as JSON ({e}).") from None


def sentence_transformers_config(model_dir: str | os.PathLike) -> dict:
    """What a sentence-transformers folder says: ``transformer_dir``, ``pooling``, ``normalize``,
    ``max_length``, ``query_prefix``, ``doc_prefix`` (only the keys it sets). ``{}`` for a plain HF folder."""
    root = Path(model_dir)
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return {}
    out: dict = {"normalize": False, "transformer_dir": root}
    modules = _read_json(modules_file)
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = root / module.get("path", "")
        if kind not in _ST_MODULES:
            raise SpladeError(f"{modules_file}: module {kind or module} is not supported by the dense baseline "
                              f"(only {', '.join(sorted(_ST_MODULES))}).")
        if kind == "Transformer":
            out["transformer_dir"] = path
            st = path / "sentence_bert_config.json"
            if st.is_file():
                msl = _read_json(st).get("max_seq_length")
                if isinstance(msl, int):
                    out["max_length"] = msl
        elif kind == "Pooling":
            cfg = _read_json(path / "config.json") if (path / "config.json").is_file() else {}
            modes = [m for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens",
                                 "weightedmean_tokens", "lasttoken") if cfg.get(f"pooling_mode_{m}")]
            if modes == ["cls_token"]:
                out["pooling"] = "cls"
            elif modes == ["mean_tokens"]:
                out["pooling"] = "mean"
            else:
                raise SpladeError(f"{path}: pooling {modes or 'none'} is not supported; pass --pooling cls or mean "
                                  "to override it.")
        elif kind == "Normalize":
            out["normalize"] = True
    cfg_file = root / "config_sentence_transformers.json"
    if cfg_file.is_file():
        prompts = _read_json(cfg_file).get("prompts") or {}
        if isinstance(prompts, dict):
            if "query" in prompts:
                out["query_prefix"] = prompts["query"]
            for name in ("document", "passage", "corpus"):
                if name in prompts:
                    out["doc_prefix"] = prompts[name]
                    break
    return out


class _Encoder:
    def __init__(self, model_dir, pooling, normalize, max_length, batch_size, device):
        if pooling not in POOLINGS:
            raise SpladeError(f"unknown pooling {pooling!r}; use cls or mean.")
        if batch_size < 1:
            raise SpladeError("batch size must be at least 1.")
        self.tokenizer, self.model, self.device = load_model(model_dir, "AutoModel", "dense encoder", device)
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length_for(self.tokenizer, self.model, max_length)
        self.batch_size = batch_size

    def encode(self, texts: list[str]):
        """float32 ``[len(texts), dim]`` numpy array, in the order given."""
        import numpy as np
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = None
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items()}
                hidden = self.model(**enc).last_hidden_state.float()
                if self.pooling == "cls":
                    emb = hidden[:, 0]
                else:
                    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                if self.normalize:
                    emb = torch.nn.functional.normalize(emb, p=2, dim=-1)
                emb = emb.cpu().numpy()
                if out is None:
                    out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
                out[idx] = emb
        if out is None:
            out = np.zeros((0, int(self.model.config.hidden_size)), dtype=np.float32)
        return out


def dense_search(corpus_source, topics: dict[str, str], model_dir: str | os.PathLike, k: int = 1000,
                 pooling: str | None = None, normalize: bool | None = None, batch_size: int = 32,
                 max_length: int | None = None, device: str = "auto", query_prefix: str | None = None,
                 doc_prefix: str | None = None, chunk_size: int = 8192, progress: bool = False) -> Run:
    """Top ``k`` documents per topic by inner product of pooled embeddings (exact search, faiss ``IndexFlatIP``).

    ``pooling``/``normalize``/``max_length``/prefixes left as None take the sentence-transformers folder's
    settings, else ``cls``, no normalisation, 512 tokens and no prefix.
    """
    try:
        import faiss
    except ImportError:
        raise SpladeError("the dense baseline needs faiss; install it with `pip install faiss-cpu`.") from None
    import numpy as np

    if k < 1:
        raise SpladeError("k (hits per query) must be at least 1.")
    if not topics:
        raise SpladeError("no topics to search.")
    if not Path(model_dir).is_dir():
        raise SpladeError(f"dense encoder model {model_dir} is no local folder; download it first and pass that folder.")
    st = sentence_transformers_config(model_dir)
    pooling = pooling or st.get("pooling", "cls")
    normalize = st.get("normalize", False) if normalize is None else bool(normalize)
    max_length = max_length or st.get("max_length", 512)
    query_prefix = st.get("query_prefix", "") if query_prefix is None else query_prefix
    doc_prefix = st.get("doc_prefix", "") if doc_prefix is None else doc_prefix
    encoder = _Encoder(st.get("transformer_dir", model_dir), pooling, normalize, max_length, batch_size, device)

    bar = None
    if progress:
        from tqdm import tqdm

        from ..corpus import count_documents

        bar = tqdm(total=count_documents(corpus_source), unit="doc", desc="dense encode")
    index = None
    doc_ids: list[str] = []
    ids_chunk: list[str] = []
    texts_chunk: list[str] = []

    def flush():
        nonlocal index
        if not texts_chunk:
            return
        emb = encoder.encode(texts_chunk)
        if index is None:
            index = faiss.IndexFlatIP(emb.shape[1])
        index.add(np.ascontiguousarray(emb, dtype=np.float32))
        doc_ids.extend(ids_chunk)
        if bar is not None:
            bar.update(len(ids_chunk))
        ids_chunk.clear()
        texts_chunk.clear()

    for doc in read_corpus(corpus_source):
        ids_chunk.append(doc.id)
        texts_chunk.append(doc_prefix + doc.text)
        if len(texts_chunk) >= chunk_size:
            flush()
    flush()
    if bar is not None:
        bar.close()
    if index is None:
        raise SpladeError(f"corpus {corpus_source} holds no documents.")

    qids = list(topics)
    q_emb = encoder.encode([query_prefix + topics[q] for q in qids])
    kk = min(k, index.ntotal)
    scores, rows = index.search(np.ascontiguousarray(q_emb, dtype=np.float32), kk)
    run: Run = {}
    for qi, qid in enumerate(qids):
        run[qid] = {doc_ids[r]: float(s) for s, r in zip(scores[qi], rows[qi]) if r >= 0}
    return run
