"""Data parallelism for the trainer: process-group set-up and the global-batch FLOPS term.

Single node: ``torchrun --nproc_per_node N -m splade_pyserini.train.trainer --config CFG`` (or
``torchrun ... -m splade_pyserini.cli train ...``). ``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
:func:`setup` then joins the process group — NCCL when CUDA is available (one GPU per process, ``cuda:LOCAL_RANK``),
gloo on CPU. Without those variables training runs in one process, no process group.

Multi-node: run the same command on every node with ``--nnodes M --node_rank K --rdzv_backend c10d
--rdzv_endpoint HOST:PORT`` (the same endpoint everywhere, e.g. the first node's address); ranks then span the
nodes and nothing else changes. The global batch (``batch_size`` queries per optimizer step) must be divisible by
``WORLD_SIZE * grad_accum``. Checkpoints are written by global rank 0 only, so ``output_dir`` must be on a file
system every node can read when resuming (or copy the last checkpoint to each node's ``output_dir``). NCCL picks
its network by itself; set ``NCCL_SOCKET_IFNAME`` (and ``GLOO_SOCKET_IFNAME``) when nodes have several interfaces.

Global FLOPS. ``FLOPS = sum_j (mean_i |w_ij|)^2`` is not a sum over rows, so the mean of per-rank FLOPS is not
the FLOPS of the global batch. :func:`global_mean_abs` all-reduces (sums) the per-rank column sums
``S_r = sum_{i in r} |w_i|`` and returns ``(S_r + stopgrad(S - S_r)) / N``: its value is the global mean ``S / N``
and its gradient flows into this rank's rows only, and is exactly ``d(global FLOPS)/d(w_i)`` for those rows —
``2 (S_j / N) sign(w_ij) / N``. DDP *averages* gradients over ranks, so each rank back-propagates
``world_size * FLOPS_global``; the average of the per-rank gradients is then the sum over ranks of the exact
per-row gradients, i.e. the gradient of the global FLOPS. The per-query terms (KL, MarginMSE, query L1) are means
over equal-sized slices, so DDP's average of their gradients is already the gradient of the global mean.
The logged FLOPS is the global value, not multiplied. With ``grad_accum > 1`` the FLOPS term is computed per
micro-batch (over all ranks' micro-batches of the same index), as naver/splade computes it per forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..ranks import distributed_rank


@dataclass
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average of a (detached) tensor over ranks."""
        if not self.enabled:
            return values
        where = values.device
        values = values.detach().clone().to(self.device)  # NCCL reduces device tensors only
        torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.SUM)
        return (values / self.world).to(where)

    def gather_objects(self, obj) -> list:
        if not self.enabled:
            return [obj]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out


def setup(device: str = "auto") -> DistContext:
    rank, world, local_rank = distributed_rank()
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and world > 1:
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return DistContext(rank=rank, world=world, local_rank=local_rank, device=device)


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def global_mean_abs(reps: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """``[vocab]`` mean of ``|w|`` over the rows of every rank (equal row counts); gradient into local rows only."""
    local = reps.float().abs().sum(dim=0)
    rows = reps.shape[0] * ctx.world
    if not ctx.enabled:
        return local / rows
    total = local.detach().clone()
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM)
    return (local + (total - local.detach())) / rows


def global_flops(reps: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """FLOPS of the global batch: ``sum_j (global mean_i |w_ij|)^2`` (see the module notes for the gradient)."""
    return global_mean_abs(reps, ctx).pow(2).sum()
