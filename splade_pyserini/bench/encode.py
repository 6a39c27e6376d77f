"""``splade-pyserini bench encode``: document encoding, this package vs Pyserini vs sentence-transformers.

Same texts, same model, one run: each path is timed after a warm-up; this package is timed end to end (texts in,
vector shards written), the peers for encoding alone (which favours them). The vectors are compared (integer weights
against Pyserini's, top-20 terms against the fp32 path) and a table of docs/s, tokens/s, TFLOP/s and ratios is
printed, ending with ``ratio_vs_pyserini=<x>``. ``exact=True`` adds a row for ``encode --exact`` (integer weights
equal to the float64 formula's on any CPU, see :mod:`splade_pyserini.exact`) and its cost against the default.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..corpus import Document, read_corpus
from ..errors import SpladeError


def flops_per_token(config) -> float:
    """Forward FLOPs per token of a BERT-like masked LM (matrix products; attention's L² term left out)."""
    h = getattr(config, "hidden_size", None) or getattr(config, "dim")
    inter = getattr(config, "intermediate_size", None) or getattr(config, "hidden_dim")
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers")
    vocab = config.vocab_size
    return 2.0 * layers * (4 * h * h + 2 * h * inter) + 2.0 * (h * h + h * vocab)


def synthetic_passages(n: int, seed: int = 0, mean_words: int = 56) -> list[Document]:
    """MS MARCO-length passages (≈ 75 BERT tokens on average) drawn from the bundled sample's English words."""
    sample = Path(__file__).resolve().parents[1] / "data" / "sample" / "corpus.jsonl"
    words = sorted({w.strip(".,;:()\"'").lower() for line in open(sample) for w in json.loads(line)["text"].split()} - {""})
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        length = max(8, min(200, int(rng.gauss(mean_words, 22))))
        docs.append(Document(f"p{i}", " ".join(rng.choice(words) for _ in range(length))))
    return docs


def random_bert_base(directory: Path, tokenizer_dir: Path, density: float = 0.01, seed: int = 0) -> Path:
    # tokenizer_dir: any bert-base-uncased tokenizer folder (the embedded splade-tiny's by default)
    """A BERT-base SPLADE with random weights, decoder bias set so that ≈ ``density`` of the vocabulary is active."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer))).eval()
    texts = [d.text for d in synthetic_passages(64, seed)]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits.masked_fill(~enc["attention_mask"].bool()[..., None], -1e9).amax(1)
    shift = torch.quantile(logits.flatten().float()[::7], 1 - density)
    with torch.no_grad():
        model.cls.predictions.bias -= shift
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def _pyserini_model_dir(encoder, directory: Path) -> Path:
    """Pyserini loads ``pytorch_model.bin`` only (use_safetensors=False) and does not map gamma/beta: give it a
    converted copy of the very same weights so the comparison is fair."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    model = encoder.model.to("cpu", dtype=torch.float32)
    model.config.save_pretrained(str(directory))
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, directory / "pytorch_model.bin")
    encoder.tokenizer.save_pretrained(str(directory))
    encoder.model = model.to(encoder.device, dtype=encoder.dtype)
    return directory


class PyseriniStyleEncoder:
    """Pyserini 2.3's ``SpladeDocumentEncoder.encode`` algorithm, for machines where Pyserini cannot be imported
    (a GPU box without Java): pad each batch to its longest text, fp32 forward, ``log(1 + relu(logits)) * mask``
    over ``[batch, length, vocab]``, max, numpy non-zeros, a token dict per document, ``round(w / 5 * 256)``."""

    def __init__(self, model, tokenizer, device):
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.reverse = {v: k for k, v in tokenizer.get_vocab().items()}

    def encode(self, texts, max_length=512):
        import torch

        inputs = self.tokenizer(texts, max_length=max_length, truncation=True, padding="longest",
                                return_attention_mask=True, return_token_type_ids=False, return_tensors="pt").to(self.device)
        logits = self.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])["logits"]
        agg, _ = torch.max(torch.log(1 + torch.relu(logits)) * inputs["attention_mask"].unsqueeze(-1), dim=1)
        agg = agg.cpu().detach().numpy()
        out = []
        for row in agg:
            cols = np.nonzero(row)[0]
            out.append({self.reverse[k]: round(float(v) / 5 * 256) for k, v in zip(cols, row[cols])})
        return out


def _time(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def bench_encode(encoder: str, corpus: str | None, limit: int = 600, device: str = "auto", peers=("pyserini", "st"),
                 peer_limit: int | None = None, random_base: bool = False, synthetic: int | None = None,
                 compile: bool = False, fmt: str = "jsonl", batch_size: int = 32, workdir: str | None = None,
                 tokenizer: str | None = None, exact: bool = False) -> dict:
    import torch

    from ..encoder import load_encoder, quantize
    from ..vectors import encode_corpus

    tmp = Path(workdir or tempfile.mkdtemp(prefix="splade-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    if synthetic:
        docs = synthetic_passages(synthetic)
    elif corpus:
        docs = list(itertools.islice(read_corpus(corpus), limit))
    else:
        raise SpladeError("give --corpus C or --synthetic N.")
    if not docs:
        raise SpladeError(f"corpus {corpus} holds no documents.")
    corpus_file = tmp / "corpus.jsonl"
    with open(corpus_file, "w") as f:
        for d in docs:
            f.write(json.dumps({"id": d.id, "contents": d.text}) + "\n")
    texts = [d.text for d in docs]

    model_source = encoder
    if random_base:
        from ..checkpoint import resolve_model_dir
        from ..cards import resolve_card

        tok_dir = Path(tokenizer) if tokenizer else resolve_model_dir(resolve_card("splade-tiny").model)
        model_source = str(random_bert_base(tmp / "bert-base-random", tok_dir))
    ours = load_encoder(model_source, device=device, compile=compile)
    card = ours.card
    n_tokens = sum(len(x) for x in ours.tokenize(texts, card.doc_max_length))
    fpt = flops_per_token(ours.model.config)
    rows = []

    def row(name, seconds, n, tokens, note=""):
        rows.append({"path": name, "docs": n, "seconds": seconds, "docs_per_s": n / seconds,
                     "tokens_per_s": tokens / seconds, "tflops": tokens * fpt / seconds / 1e12, "note": note})

    # warm-up (and compilation) outside the timed region
    warm_t, _ = _time(ours.encode, texts[: min(len(texts), 256)], "document")
    if ours.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds, meta = _time(encode_corpus, ours, str(corpus_file), tmp / "vectors", 10**9, None, True, False, None, fmt)
    row(f"splade-pyserini ({ours.precision}, {ours.device}{', compiled' if compile else ''})", seconds, len(docs),
        n_tokens, f"end to end to {fmt} shards; warm-up {warm_t:.1f}s")
    fast = ours.encode(texts, "document")

    checks = {}
    if exact:
        ours.encode(texts[: min(len(texts), 64)], "document", exact=True)  # warm-up: the float64 copy of the model
        seconds, _ = _time(encode_corpus, ours, str(corpus_file), tmp / "vectors-exact", 10**9, None, True, False,
                           None, fmt, True)
        row(f"splade-pyserini --exact ({ours.precision}, {ours.device})", seconds, len(docs), n_tokens,
            f"end to end to {fmt} shards; float64 recomputation near a rounding boundary")
        checks["exact_docs_per_s_over_default"] = rows[-1]["docs_per_s"] / rows[0]["docs_per_s"]
        checks.update(_exact_changes(ours, fast, ours.encode(texts, "document", exact=True)))
    peer_n = min(len(texts), peer_limit or len(texts))
    peer_tokens = sum(len(x) for x in ours.tokenize(texts[:peer_n], card.doc_max_length))
    if ours.precision != "fp32":
        ref = load_encoder(model_source, device=ours.device, precision="fp32")
        exact = ref.encode(texts[:peer_n], "document")
        checks["top20_agreement_vs_fp32"] = top_k_agreement(fast, exact, peer_n, 20)
    else:
        exact = fast

    if "pyserini" in peers:
        import torch

        pdev = "cuda:0" if ours.device.startswith("cuda") else "cpu"
        try:
            from ..anserini import start_jvm

            start_jvm()  # pyserini.encode imports pieces that need the JVM
            from pyserini.encode import SpladeDocumentEncoder

            peer = SpladeDocumentEncoder(str(_pyserini_model_dir(ours, tmp / "pyserini-model")), device=pdev)
            label = f"pyserini SpladeDocumentEncoder (fp32, batch {batch_size})"
        except Exception as e:  # not importable here (e.g. no Java on a GPU box): the same algorithm, emulated
            from ..checkpoint import load_masked_lm

            model, tokenizer = load_masked_lm(ours.model_dir)
            peer = PyseriniStyleEncoder(model.to(pdev), tokenizer, pdev)
            label = f"pyserini-style, emulated (fp32, batch {batch_size})"
            checks["pyserini_import"] = f"{type(e).__name__}: {str(e)[:80]}"

        def run_pyserini():
            out = []
            with torch.no_grad():
                for i in range(0, peer_n, batch_size):
                    out.extend(peer.encode(texts[i:i + batch_size], max_length=card.doc_max_length))
            return out

        with torch.no_grad():
            peer.encode(texts[:batch_size], max_length=card.doc_max_length)  # warm-up
        seconds, pvecs = _time(run_pyserini)
        row(label, seconds, peer_n, peer_tokens, "encoding only (no file writing)")
        checks.update(compare_with_pyserini(ours, exact, pvecs, peer_n))
    if "st" in peers:
        try:
            from sentence_transformers import SparseEncoder
            from sentence_transformers.sparse_encoder.models import MLMTransformer, SpladePooling
        except Exception as e:
            rows.append({"path": "sentence-transformers SparseEncoder", "note": f"skipped: {type(e).__name__}"})
        else:
            st = SparseEncoder(modules=[MLMTransformer(str(ours.model_dir), max_seq_length=card.doc_max_length),
                                        SpladePooling("max")], device=ours.device)
            st.encode_document(texts[:batch_size], batch_size=batch_size)
            seconds, _ = _time(lambda: st.encode_document(texts[:peer_n], batch_size=batch_size, convert_to_sparse_tensor=True))
            if ours.device.startswith("cuda"):
                torch.cuda.synchronize()
            row(f"sentence-transformers SparseEncoder (fp32, batch {batch_size})", seconds, peer_n, peer_tokens,
                "encoding only, sparse tensors out")

    ours_rate = rows[0]["docs_per_s"]
    for r in rows:
        if "docs_per_s" in r:
            r["ratio"] = ours_rate / r["docs_per_s"]
    result = {"device": _device_name(ours.device), "encoder": card.name, "documents": len(docs),
              "mean_tokens": n_tokens / len(docs), "flops_per_token": fpt, "rows": rows, "checks": checks}
    if not workdir:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _exact_changes(ours, fast, exact) -> dict:
    """How many documents and integer weights ``--exact`` changed (each by one step at a rounding boundary)."""
    from ..encoder import quantize

    docs = weights = 0
    for i in range(len(fast)):
        a = dict(zip(fast.row(i)[0].tolist(), quantize(fast.row(i)[1], ours.card.scale).tolist()))
        b = dict(zip(exact.row(i)[0].tolist(), quantize(exact.row(i)[1], ours.card.scale).tolist()))
        changed = sum(a.get(t, 0) != b.get(t, 0) for t in a.keys() | b.keys())
        docs, weights = docs + (changed > 0), weights + changed
    return {"exact_changed_documents": docs, "exact_changed_int_weights": weights}


def top_k_agreement(a, b, n: int, k: int = 20) -> float:
    """Fraction of documents whose top-k terms (by weight) are the same set in both sparse batches."""
    same = 0
    for i in range(n):
        ta, wa = a.row(i)
        tb, wb = b.row(i)
        sa = set(ta[np.argsort(-wa, kind="stable")[:k]].tolist())
        sb = set(tb[np.argsort(-wb, kind="stable")[:k]].tolist())
        same += sa == sb
    return same / max(1, n)


def compare_with_pyserini(ours, batch, pvecs, n: int) -> dict:
    """Integer weights: ours ``round(w * 51.2)`` half away from zero vs Pyserini's ``round(w / 5 * 256)``."""
    from ..encoder import quantize

    identical, max_diff = 0, 0
    for i in range(n):
        terms, weights = batch.row(i)
        q = quantize(weights, 51.2)
        mine = {ours.vocab[t]: int(w) for t, w in zip(terms.tolist(), q.tolist()) if w}
        theirs = {t: int(w) for t, w in pvecs[i].items() if w}
        identical += mine == theirs
        keys = mine.keys() | theirs.keys()
        if keys:
            max_diff = max(max_diff, max(abs(mine.get(t, 0) - theirs.get(t, 0)) for t in keys))
    return {"identical_int_vectors_vs_pyserini": identical / max(1, n), "max_int_weight_diff_vs_pyserini": max_diff}


def _device_name(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), torch threads {torch.get_num_threads()}"


def format_result(result: dict) -> str:
    lines = [f"device: {result['device']}; encoder {result['encoder']}; {result['documents']} documents, "
             f"{result['mean_tokens']:.1f} tokens on average; {result['flops_per_token'] / 1e9:.3f} GFLOP/token", ""]
    head = f"{'path':<58} {'docs':>6} {'docs/s':>9} {'tokens/s':>10} {'TFLOP/s':>8} {'ours ×':>7}  note"
    lines += [head, "-" * len(head)]
    for r in result["rows"]:
        if "docs_per_s" not in r:
            lines.append(f"{r['path']:<58} {'':>6} {'':>9} {'':>10} {'':>8} {'':>7}  {r['note']}")
            continue
        lines.append(f"{r['path']:<58} {r['docs']:>6} {r['docs_per_s']:>9.1f} {r['tokens_per_s']:>10.0f} "
                     f"{r['tflops']:>8.3f} {r['ratio']:>7.2f}  {r['note']}")
    for k, v in result["checks"].items():
        lines.append(f"check {k}: {v:.4f}" if isinstance(v, float) else f"check {k}: {v}")
    return "\n".join(lines)
