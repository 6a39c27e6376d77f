"""Training throughput: full optimizer steps of the SPLADE-v3 recipe on synthetic batches.

Each step is what :mod:`.trainer` does per step — tokenised queries (``query_length`` tokens) and documents
(``doc_length`` tokens, 1 positive + ``n_negatives`` per query) through ``splade_max``, KL + MarginMSE + FLOPS + L1,
backward, gradient clipping and AdamW — on random token ids. ``model="bert-base"`` builds a randomly initialised
``BertForMaskedLM(BertConfig())`` in memory (the SPLADE-v3 shape: 12 layers, hidden 768, vocabulary 30,522), so no
download is needed; ``"bert-tiny"`` the 2-layer, hidden-128 shape; anything else is loaded as a SPLADE checkpoint.
"""

from __future__ import annotations

import time


def _model(model: str):
    from transformers import AutoModelForMaskedLM, BertConfig

    if model == "bert-base":
        return AutoModelForMaskedLM.from_config(BertConfig(), attn_implementation="sdpa")
    if model == "bert-tiny":
        cfg = BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)
        return AutoModelForMaskedLM.from_config(cfg, attn_implementation="sdpa")
    from ..cards import resolve_card
    from ..checkpoint import load_masked_lm, resolve_model_dir

    return load_masked_lm(resolve_model_dir(resolve_card(model).model))[0]


def bench_train(model: str = "bert-base", device: str = "auto", batch_size: int | None = None, n_negatives: int = 8,
                query_length: int = 32, doc_length: int = 128, steps: int = 5, warmup_steps: int = 2,
                precision: str = "auto", seed: int = 0) -> dict:
    """``{"queries_per_s", "docs_per_s", "tokens_per_s", "step_s", …}`` over ``steps`` timed steps after warm-up."""
    import contextlib

    import torch

    from .distributed import DistContext
    from .config import TrainConfig
    from .trainer import _student_module, compute_losses

    torch.manual_seed(seed)
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = device.startswith("cuda")
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if batch_size is None:
        batch_size = 20 if cuda else 2  # naver's HF baseline: 20 queries per device
    mlm = _model(model).to(device).train()
    vocab = int(mlm.config.vocab_size)
    student = _student_module(mlm, "full", vocab, [0, 100, 101, 102, 103])
    optimizer = torch.optim.AdamW(mlm.parameters(), lr=2e-5)
    scaler = torch.amp.GradScaler("cuda") if (precision == "fp16" and cuda) else None
    cfg = TrainConfig(reg_T=1)
    ctx = DistContext(device=device)
    gen = torch.Generator().manual_seed(seed)
    k = 1 + n_negatives

    def batch():
        q = torch.randint(1000, vocab, (batch_size, query_length), generator=gen)
        d = torch.randint(1000, vocab, (batch_size * k, doc_length), generator=gen)
        q[:, 0], q[:, -1], d[:, 0], d[:, -1] = 101, 102, 101, 102
        t = torch.randn(batch_size, k, generator=gen)
        return (q.to(device), torch.ones_like(q).to(device), d.to(device), torch.ones_like(d).to(device), t.to(device))

    def step(data):
        q_ids, q_mask, d_ids, d_mask, teacher = data
        ac = torch.autocast("cuda" if cuda else "cpu", dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        with ac:
            q_reps, d_reps = student(q_ids, q_mask, d_ids, d_mask)
        loss, _ = compute_losses(q_reps, d_reps, teacher, cfg, 1, ctx, "full")
        if scaler:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        torch.nn.utils.clip_grad_norm_(mlm.parameters(), 1.0)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    batches = [batch() for _ in range(min(steps, 3))]
    for i in range(warmup_steps):
        step(batches[i % len(batches)])
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / steps
    tokens = batch_size * (query_length + k * doc_length)
    return {
        "model": model, "device": torch.cuda.get_device_name(device) if cuda else "cpu", "precision": precision,
        "parameters": sum(p.numel() for p in mlm.parameters()), "batch_queries": batch_size,
        "n_negatives": n_negatives, "query_length": query_length, "doc_length": doc_length, "steps": steps,
        "step_s": seconds, "queries_per_s": batch_size / seconds, "docs_per_s": batch_size * k / seconds,
        "tokens_per_s": tokens / seconds,
        "peak_memory_gb": (torch.cuda.max_memory_allocated(device) / 2**30) if cuda else None,
        "threads": torch.get_num_threads(),
    }
