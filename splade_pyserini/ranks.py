"""torchrun's environment, read in one place: this process's rank, the world size and its local rank (``encode``:
which shards a rank writes; ``train``: its process group and device), and an id the ranks of one job share."""

from __future__ import annotations

import os
import time

from .errors import SpladeError


def distributed_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; (0, 1, 0) when
    not distributed."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if not 0 <= rank < world:
        raise SpladeError(f"RANK={rank} is outside WORLD_SIZE={world}.")
    return rank, world, local


def job_id() -> str:
    """The same for every rank of one torchrun job, different from any other run."""
    job = os.environ.get("TORCHELASTIC_RUN_ID")
    if job and job != "none":
        return f"torchrun:{job}:{os.environ.get('MASTER_ADDR', '')}:{os.environ.get('MASTER_PORT', '')}"
    world = os.environ.get("WORLD_SIZE", "1")
    if int(world) > 1:  # one node: the ranks are children of one launcher, whose pid tells this job from the last
        node = f":{os.getppid()}" if os.environ.get("LOCAL_WORLD_SIZE", world) == world else ""
        return f"ranks:{os.environ.get('MASTER_ADDR', '')}:{os.environ.get('MASTER_PORT', '')}{node}"
    return f"pid:{os.getpid()}:{time.time_ns()}"
