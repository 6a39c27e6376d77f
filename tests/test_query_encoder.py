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
    assert tiny_encoder.queries._one_text is not None, "BERT models take the lean one-text path"
    with torch.inference_mode():
        for ids in tiny_encoder.tokenize(queries(cranfield, 40), 256):
            lean = torch.from_numpy(tiny_encoder.queries._one_text(ids))
            full = tiny_encoder.model.base_model(input_ids=torch.tensor([ids])).last_hidden_state[0]
            assert lean.shape == full.shape
            assert torch.allclose(lean, full, atol=1e-5, rtol=0)
            transform = tiny_encoder.model.cls.predictions.transform
            assert torch.allclose(torch.from_numpy(tiny_encoder.queries._one_text.head_input(ids)), transform(full),
                                  atol=1e-4, rtol=1e-5)


def test_one_text_forward_distilbert():
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    from splade_pyserini.query_kernels import OneTextForward

    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=500, dim=64, hidden_dim=128, n_layers=2, n_heads=4, max_position_embeddings=64)
    model = DistilBertForMaskedLM(config).eval()
    assert OneTextForward.supports(model)
    lean = OneTextForward(model)
    ids = [101, 7, 42, 300, 5, 102]
    with torch.inference_mode():
        expected = model.base_model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        assert torch.allclose(torch.from_numpy(lean(ids)), expected, atol=1e-5, rtol=0)
        head = model.vocab_layer_norm(model.activation(model.vocab_transform(expected)))
        assert torch.allclose(torch.from_numpy(lean.head_input(ids)), head, atol=1e-4, rtol=1e-5)


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
    before = (torch.get_num_threads(), tiny_encoder.queries.workers)
    try:
        tiny_encoder.queries.workers = 1
        torch.set_num_threads(1)
        assert tiny_encoder.quantized_queries(texts) == together
        tiny_encoder.queries.workers = 3
        torch.set_num_threads(3)
        assert tiny_encoder.quantized_queries(texts) == together
        assert torch.get_num_threads() == 3, "the caller's thread count is restored"
    finally:
        torch.set_num_threads(before[0])
        tiny_encoder.queries.workers = before[1]
    # the unquantised and the quantised weights come from the same computation
    raw = tiny_encoder.encode_queries(texts[:10])
    scale = tiny_encoder.card.scale
    for r, q in zip(raw, together[:10]):
        assert {t: int(np.floor(w * scale + 0.5)) for t, w in r.items() if np.floor(w * scale + 0.5) > 0} == q


def test_screened_projection_finds_every_positive_maximum_exactly():
    """Logits built to sit within rounding distance of zero: the screen keeps every entry whose float64 maximum is
    positive, and the exact pass returns that maximum (exact float64 products of the float32 inputs)."""
    from splade_pyserini.query_encoder import ScreenedProjection

    rng = np.random.default_rng(7)
    vocab, hidden = 5000, 96
    weight = rng.standard_normal((vocab, hidden)).astype(np.float32)
    texts = [rng.standard_normal((n, hidden)).astype(np.float32) * 3 for n in (1, 2, 9, 30)]
    # each text's true maxima, then a bias that puts half of the entries just above zero, half just below
    tops = [(h.astype(np.float64) @ weight.astype(np.float64).T).max(axis=0) for h in texts]
    bias = (-tops[2] + rng.choice([-1e-6, 1e-6], vocab)).astype(np.float32)
    screen = ScreenedProjection(weight, bias, block_width=1024)
    for h, candidates in zip(texts, screen.candidates(texts)):
        expected = (h.astype(np.float64) @ weight.astype(np.float64).T).max(axis=0) + bias.astype(np.float64)
        positive = np.flatnonzero(expected > 0)
        assert set(positive) <= set(candidates.tolist())
        ids, top = screen.exact(h, candidates)
        assert ids.tolist() == positive.tolist()
        assert np.allclose(top, expected[positive], rtol=1e-12, atol=1e-12)
    kept = [len(c) for c in screen.candidates(texts)]
    assert kept[2] == vocab, "entries within the rounding margin of zero are all kept"
    assert max(kept[0], kept[1], kept[3]) < 0.8 * vocab, "entries far below zero are screened out"
    # grouping does not change a text's result
    alone = [screen.exact(h, screen.candidates([h])[0]) for h in texts]
    together = [screen.exact(h, c) for h, c in zip(texts, screen.candidates(texts))]
    for (a_ids, a_top), (t_ids, t_top) in zip(alone, together):
        assert a_ids.tolist() == t_ids.tolist() and a_top.tobytes() == t_top.tobytes()
    # a projection restricted to part of the vocabulary gives the same maxima on that part, and nothing else
    part = np.sort(rng.choice(vocab, vocab // 3, replace=False))
    sub = screen.restricted(part)
    for h, (ids, top) in zip(texts, together):
        keep = np.isin(ids, part)
        s_ids, s_top = sub.exact(h, sub.candidates([h])[0])
        assert s_ids.tolist() == ids[keep].tolist() and s_top.tobytes() == top[keep].tobytes()
