"""Queries are encoded each alone on one thread: the SPLADE formula, whatever the batch or the thread count."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from test_encoder import formula, reference_model


def queries(collection, n=None):
    rows = [json.loads(line)["text"] for line in open(collection / "queries.jsonl")]
    return rows[:n] if n else rows


def test_one_text_forward_equals_the_models_forward(tiny_encoder, cranfield):
    assert tiny_encoder._one_text is not None, "BERT models take the lean one-text path"
    with torch.inference_mode():
        for ids in tiny_encoder.tokenize(queries(cranfield, 40), 256):
            lean = tiny_encoder._one_text(ids)
            full = tiny_encoder.model.base_model(input_ids=torch.tensor([ids])).last_hidden_state[0]
            assert lean.shape == full.shape
            assert torch.allclose(lean, full, atol=1e-5, rtol=0)


def test_one_text_forward_distilbert():
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    from splade_pyserini.query_encoder import OneTextForward

    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=500, dim=64, hidden_dim=128, n_layers=2, n_heads=4, max_position_embeddings=64)
    model = DistilBertForMaskedLM(config).eval()
    assert OneTextForward.supports(model)
    lean = OneTextForward(model)
    ids = [101, 7, 42, 300, 5, 102]
    with torch.inference_mode():
        expected = model.base_model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        assert torch.allclose(lean(ids), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["cranfield", "vaswani"])
def test_queries_equal_formula_in_float64(name, request, tiny_model, tiny_encoder):
    collection = request.getfixturevalue(name)
    texts = queries(collection, 30)
    ref_model = reference_model(tiny_model)
    worst = 0.0
    for text, vec in zip(texts, tiny_encoder.encode_queries(texts)):
        ref = formula(ref_model, tiny_encoder.tokenizer, text, max_length=tiny_encoder.card.query_max_length)
        dense = np.zeros_like(ref)
        for token, w in vec.items():
            dense[tiny_encoder.tokenizer.convert_tokens_to_ids(token)] = w
        worst = max(worst, float(np.abs(dense - ref).max()))
        assert {tiny_encoder.vocab[j] for j in np.nonzero(ref > 1e-6)[0]} <= set(vec)
    assert worst < 1e-4, worst


def test_query_weights_depend_neither_on_the_batch_nor_on_threads(tiny_encoder, vaswani):
    texts = queries(vaswani)
    together = tiny_encoder.quantized_queries(texts)
    alone = [tiny_encoder.quantized_queries([t])[0] for t in texts[:10]]
    assert alone == together[:10]
    shuffled = list(reversed(texts))
    assert list(reversed(tiny_encoder.quantized_queries(shuffled))) == together
    before = (torch.get_num_threads(), tiny_encoder.query_workers)
    try:
        tiny_encoder.query_workers = 1
        torch.set_num_threads(1)
        assert tiny_encoder.quantized_queries(texts) == together
        tiny_encoder.query_workers = 3
        torch.set_num_threads(3)
        assert tiny_encoder.quantized_queries(texts) == together
        assert torch.get_num_threads() == 3, "the caller's thread count is restored"
    finally:
        torch.set_num_threads(before[0])
        tiny_encoder.query_workers = before[1]
    # the unquantised and the quantised weights come from the same computation
    raw = tiny_encoder.encode_queries(texts[:10])
    scale = tiny_encoder.card.scale
    for r, q in zip(raw, together[:10]):
        assert {t: int(np.floor(w * scale + 0.5)) for t, w in r.items() if np.floor(w * scale + 0.5) > 0} == q
