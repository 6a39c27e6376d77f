"""Fine-tuning a SPLADE model by distillation (the SPLADE-v3 recipe), on one device or data-parallel.

Inputs: a warm-start SPLADE checkpoint (``model``: a card name, directory or Hugging Face id), the training
topics and corpus, the negative pools of :mod:`.mine` and the teacher score file of :mod:`.teachers`.
Each optimizer step takes ``batch_size`` queries (the global batch, over all ranks and accumulation steps), each
with one positive and ``n_negatives`` negatives (:mod:`.data`), and minimises::

    kl_weight * KL + margin_mse_weight * MarginMSE + λd(t) * FLOPS(documents) + λq(t) * L1(queries)

with ``λ(t) = λ * min(1, (t / reg_T)^2)``, ``t`` the 1-based number of the optimizer step being taken (the
naver/splade defaults: KL 0.99, MarginMSE 0.05, λd 0.02, λq 0.01, T 30,000). AdamW with a linear schedule and
warm-up (``warmup_ratio`` of the steps, or ``warmup_steps``), gradient clipping, bf16 (else fp16 with loss
scaling) autocast on CUDA, fp32 on CPU unless asked.

Variants: ``full``; ``lexical`` (the query's representation is multiplied by the bag of its own token ids, special
tokens removed — no query expansion); ``doc`` (the query is that binary bag of words, weight 1; no query encoder,
so no query L1 term). Documents are always expanded.

Output: ``output_dir`` ends up holding the trained model in Hugging Face format (``save_pretrained`` of the model
and the tokenizer) with ``splade_card.toml`` (variant, inference lengths, scale), so ``--encoder output_dir``
works at once; ``train_state.json`` (config, seeds, world size, per-step log) and ``train_log.jsonl``.
Checkpoints go to ``output_dir/checkpoints/step-NNNNNNN`` (each a complete model directory too, plus optimizer,
scheduler and RNG states), written atomically; a run started again with the same ``output_dir`` resumes from the
newest one (``resume = false`` starts over). Data order is a pure function of the seed and the step, so a resumed
run sees the same batches as an uninterrupted one.

Configuration: a TOML or JSON file (keys = :class:`~.config.TrainConfig` fields, or under a ``[train]`` table) and
command-line flags ``--field-name value`` that override it (:mod:`.config`). Checkpoint and model-folder I/O:
:mod:`.checkpoints`. This module keeps the loop and the model pieces it needs. Data-parallel runs: see
:mod:`.distributed`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import shutil
import time
from pathlib import Path

from ..errors import SpladeError
from .checkpoints import STATE_FILE, card_for, list_checkpoints, load_state, save_checkpoint, write_final
from .config import RESUME_KEYS, TrainConfig, add_config_arguments, config_from_args


# --- model pieces -----------------------------------------------------------------------------------------------
def _student_module(mlm, variant: str, vocab_size: int, special_ids):
    import torch

    from ..encoder import bag_of_words, splade_max

    class SpladeStudent(torch.nn.Module):
        """One forward for queries and documents, so DDP sees a single forward per backward."""

        def __init__(self):
            super().__init__()
            self.mlm = mlm

        def forward(self, q_ids, q_mask, d_ids, d_mask):
            d = splade_max(self.mlm, d_ids, d_mask)
            if variant == "doc":
                q = bag_of_words(q_ids, vocab_size, special_ids)
            else:
                q = splade_max(self.mlm, q_ids, q_mask)
                if variant == "lexical":
                    q = q * bag_of_words(q_ids, vocab_size, special_ids).to(q.dtype)
            return q, d

    return SpladeStudent()


def _set_dropout(model, p: float) -> None:
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def _tokenize(tokenizer, texts, max_length, device):
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt",
                    return_token_type_ids=False)
    return enc["input_ids"].to(device), enc["attention_mask"].to(device)


def compute_losses(q_reps, d_reps, teacher, cfg: TrainConfig, step: int, ctx, variant: str):
    """(objective to back-propagate on this rank, {name: value} of the global-batch terms on this rank)."""
    import torch

    from . import losses
    from .distributed import global_flops

    b, vocab = q_reps.shape
    q = q_reps.float()
    d = d_reps.float().view(b, -1, vocab)
    student = torch.bmm(d, q.unsqueeze(2)).squeeze(2)  # [b, 1 + n]
    kl = losses.kl_div(student, teacher)
    mm = losses.margin_mse(student, teacher)
    fl = global_flops(d_reps, ctx)
    lam_d = losses.regulariser_weight(step, cfg.lambda_d, cfg.reg_T)
    lam_q = losses.regulariser_weight(step, cfg.lambda_q, cfg.reg_T)
    l1q = losses.l1(q_reps) if variant != "doc" else torch.zeros((), device=q.device)
    ranking = cfg.kl_weight * kl + cfg.margin_mse_weight * mm + lam_q * l1q
    objective = ranking + lam_d * fl * ctx.world
    with torch.no_grad():
        logged = {
            "loss": float(ranking + lam_d * fl),
            "kl": float(kl), "margin_mse": float(mm), "flops": float(fl), "l1_q": float(l1q),
            "L0_d": float((d_reps != 0).sum(dim=1).float().mean()),
            "L0_q": float((q_reps != 0).sum(dim=1).float().mean()),
            "lambda_d": lam_d, "lambda_q": lam_q,
        }
    return objective, logged


# --- the loop ---------------------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> dict:
    """Run (or resume) a training; returns the final state (config, seeds, history …)."""
    import numpy as np
    import torch

    from ..cards import resolve_card
    from ..checkpoint import load_masked_lm, resolve_model_dir
    from ..topics import read_topics
    from . import distributed
    from .data import TrainingData, corpus_texts
    from .mine import read_pools
    from .teachers import read_scores

    cfg.validate()
    ctx = distributed.setup(cfg.device)
    try:
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        output_dir = Path(cfg.output_dir).resolve()
        init_card = resolve_card(cfg.model)
        init_dir = resolve_model_dir(init_card.model).resolve()
        if init_dir == output_dir:
            raise SpladeError(f"output_dir {output_dir} is the warm-start model's own directory; pick another.")
        from ..fileio import claim_folder

        # before any work: a new or empty folder, or a training output this package wrote (older ones: by their files)
        claim_folder(output_dir, "training output", what="output_dir", create=ctx.is_main,
                     legacy=lambda p: (p / STATE_FILE).is_file() or bool(list_checkpoints(p)))
        variant = cfg.variant or init_card.variant
        if ctx.device.startswith("cuda") and not torch.cuda.is_available():
            raise SpladeError(f"device {cfg.device!r} was asked for but CUDA is not available; use --device cpu.")
        micro, rem = divmod(cfg.batch_size, ctx.world * cfg.grad_accum)  # queries per forward pass
        per_rank = micro * cfg.grad_accum  # queries per rank and optimizer step
        if rem or micro < 1:
            raise SpladeError(f"batch_size {cfg.batch_size} must be a positive multiple of world size {ctx.world} "
                              f"× grad_accum {cfg.grad_accum}.")

        # Data (every rank reads it; it is small next to the model).
        pools, pool_meta = read_pools(cfg.pools)
        scores = read_scores(cfg.scores)
        queries = read_topics(cfg.queries, judged_only=False)
        wanted = {d for q, p in pools.items() for d in list(p.positives) + list(p.negatives) if d in scores.get(q, {})}
        docs = corpus_texts(cfg.corpus, wanted)
        data = TrainingData(pools, scores, queries, docs, cfg.n_negatives, cfg.seed)
        total_steps = cfg.steps if cfg.steps > 0 else max(1, math.ceil(cfg.epochs * len(data) / cfg.batch_size))

        # Resume?
        start_step, history, resume_dir = 0, [], None
        checkpoints = list_checkpoints(output_dir)
        if checkpoints and cfg.resume:
            step0, resume_dir = checkpoints[-1]
            saved = json.loads((resume_dir / STATE_FILE).read_text())
            changed = [k for k in RESUME_KEYS if saved["config"].get(k) != getattr(cfg, k)]
            if changed:
                raise SpladeError(f"{output_dir} holds a training with different {', '.join(changed)}; use another "
                                  "output_dir, or --no-resume to start over there.")
            start_step, history = step0, saved["history"]
        elif checkpoints:  # starting over: old checkpoints must not be mistaken for this run's later
            if ctx.is_main:
                for _, old in checkpoints:  # this package's checkpoints only
                    shutil.rmtree(old, ignore_errors=True)
            ctx.barrier()

        mlm, tokenizer = load_masked_lm(resume_dir or init_dir)  # (seeds torch itself: seed after it)
        # Seeds: Python/NumPy/torch per rank (dropout differs across ranks as in any DDP run); data sampling uses
        # its own generators seeded by cfg.seed (see data.py). A resumed run restores the saved torch RNG states.
        random.seed(cfg.seed + ctx.rank)
        np.random.seed(cfg.seed + ctx.rank)
        torch.manual_seed(cfg.seed + ctx.rank)
        if cfg.dropout >= 0:
            _set_dropout(mlm, cfg.dropout)
        mlm.to(ctx.device)
        mlm.train()
        vocab_size = int(mlm.config.vocab_size)
        special_ids = sorted(set(tokenizer.all_special_ids))
        student = _student_module(mlm, variant, vocab_size, special_ids)
        module = student
        if ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            module = DDP(student, device_ids=[ctx.local_rank] if ctx.device.startswith("cuda") else None)

        decay, no_decay = [], []
        for name, p in mlm.named_parameters():
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
        from transformers import get_linear_schedule_with_warmup

        warmup = cfg.warmup_steps if cfg.warmup_steps >= 0 else math.ceil(cfg.warmup_ratio * total_steps)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)

        precision = cfg.precision
        cuda = ctx.device.startswith("cuda")
        if precision == "auto":
            precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
        amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        scaler = torch.amp.GradScaler("cuda") if (precision == "fp16" and cuda) else None

        if resume_dir is not None:
            extra = load_state(resume_dir / "optimizer.pt", ctx.device)
            optimizer.load_state_dict(extra["optimizer"])
            scheduler.load_state_dict(extra["scheduler"])
            if scaler is not None and extra.get("scaler"):
                scaler.load_state_dict(extra["scaler"])
            rng = extra.get("rng", [])
            if ctx.rank < len(rng) and rng[ctx.rank] is not None:
                torch.set_rng_state(rng[ctx.rank]["torch"])
                if cuda and rng[ctx.rank].get("cuda") is not None:
                    torch.cuda.set_rng_state(rng[ctx.rank]["cuda"])

        card = card_for(cfg, init_card, variant, output_dir.name)
        seeds = {"seed": cfg.seed, "torch_seed_per_rank": "seed + rank", "data": "numpy default_rng([seed, ...]), see data.py",
                 "pools_seed": pool_meta.get("seed")}

        def state_dict(step: int) -> dict:
            return {"step": step, "total_steps": total_steps, "config": cfg.to_dict(), "variant": variant,
                    "world_size": ctx.world, "per_rank_batch": per_rank, "precision": precision, "seeds": seeds,
                    "init": {"card": init_card.name, "model": init_card.model, "model_dir": str(init_dir)},
                    "training_queries": len(data),
                    "dropped_queries": data.dropped, "warmup_steps": warmup, "history": history}

        def checkpoint(step: int) -> None:
            rng = ctx.gather_objects({"torch": torch.get_rng_state(),
                                      "cuda": torch.cuda.get_rng_state() if cuda else None})
            if ctx.is_main:
                extra = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                         "scaler": scaler.state_dict() if scaler else None, "rng": rng}
                save_checkpoint(output_dir, step, mlm, tokenizer, card, extra, state_dict(step), cfg.keep_checkpoints)
            ctx.barrier()

        bar = None
        if cfg.progress and ctx.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step")
        for step in range(start_step, total_steps):
            t0 = time.perf_counter()
            batch = data.global_batch(step, cfg.batch_size)
            mine_ = batch[ctx.rank * per_rank:(ctx.rank + 1) * per_rank]
            sums: dict[str, float] = {}
            for m in range(cfg.grad_accum):
                part = mine_[m * micro:(m + 1) * micro]
                q_ids, q_mask = _tokenize(tokenizer, [e.query for e in part], cfg.query_max_length, ctx.device)
                d_ids, d_mask = _tokenize(tokenizer, [t for e in part for t in e.texts], cfg.doc_max_length, ctx.device)
                teacher = torch.tensor([e.teacher for e in part], dtype=torch.float32, device=ctx.device)
                sync = contextlib.nullcontext()
                if ctx.enabled and m < cfg.grad_accum - 1:
                    sync = module.no_sync()
                with sync:
                    autocast = torch.autocast(device_type="cuda" if cuda else "cpu", dtype=amp_dtype) \
                        if amp_dtype is not None else contextlib.nullcontext()
                    with autocast:
                        q_reps, d_reps = module(q_ids, q_mask, d_ids, d_mask)
                    objective, logged = compute_losses(q_reps, d_reps, teacher, cfg, step + 1, ctx, variant)
                    objective = objective / cfg.grad_accum
                    if scaler is not None:
                        scaler.scale(objective).backward()
                    else:
                        objective.backward()
                for k, v in logged.items():
                    sums[k] = sums.get(k, 0.0) + v / cfg.grad_accum
            if scaler is not None:
                scaler.unscale_(optimizer)
            grad_norm = None
            if cfg.max_grad_norm > 0:
                grad_norm = float(torch.nn.utils.clip_grad_norm_(mlm.parameters(), cfg.max_grad_norm))
            lr = scheduler.get_last_lr()[0]
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            keys = sorted(sums)
            averaged = ctx.mean(torch.tensor([sums[k] for k in keys], dtype=torch.float64)).tolist()
            record = {"step": step + 1, "lr": lr, "grad_norm": grad_norm, "seconds": time.perf_counter() - t0}
            record.update(dict(zip(keys, averaged)))
            history.append(record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.4f}", L0_d=f"{record['L0_d']:.0f}")
            if cfg.save_every > 0 and (step + 1) % cfg.save_every == 0 and step + 1 < total_steps:
                checkpoint(step + 1)
        if bar is not None:
            bar.close()
        final_step = max(start_step, total_steps)
        if start_step < total_steps or not (output_dir / STATE_FILE).is_file():
            if start_step < total_steps:
                checkpoint(final_step)
            if ctx.is_main:
                write_final(output_dir, mlm, tokenizer, card, state_dict(final_step))
            ctx.barrier()
        return state_dict(final_step)
    finally:
        distributed.teardown(ctx)


def main(argv=None) -> int:
    """``python -m splade_pyserini.train.trainer --config CFG [--field value …]`` (also under ``torchrun``)."""
    from ..logs import cli_logging, module_logger
    from ..ranks import distributed_rank

    parser = argparse.ArgumentParser(prog="splade_pyserini.train.trainer", description=__doc__.split("\n\n")[0])
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    with cli_logging():
        try:
            state = train(config_from_args(args))
        except SpladeError as e:
            module_logger(__name__).error("%s", e)
            return 2
    if distributed_rank()[0] == 0:
        last = state["history"][-1] if state["history"] else {}
        print(json.dumps({"output_dir": state["config"]["output_dir"], "steps": state["step"],
                          "final_loss": last.get("loss")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
