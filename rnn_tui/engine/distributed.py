"""Data-parallel training across processes (torch.distributed + DistributedDataParallel).

Launch one process per GPU (or per CPU worker) with torchrun, which sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT:

    torchrun --nproc_per_node=4 -m rnn_tui train corpus.txt --batch 256 --ddp --out runs/big

How the work is split (see the README, "Several GPUs: DDP"):

- ``--batch`` is the global batch. Each of the N ranks takes its own contiguous block of
  batch/N rows of every window (rank r: rows r*batch/N .. (r+1)*batch/N - 1), so N processes
  see exactly the windows, the rows and the carried hidden states one process with the same
  ``--batch`` would, and (DDP averaging the gradients of equal-sized shards) take the same
  steps up to float rounding. ``--batch`` must be divisible by N.
- Backend: nccl on CUDA (one GPU per rank: cuda:LOCAL_RANK), gloo on CPU.
- Only rank 0 writes metrics.jsonl, TensorBoard events and checkpoints, and runs validation.
  The logged training loss is the mean over all ranks (one all-reduce at each logged step).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch

from .errors import ConfigError, DeviceError

TORCHRUN_HINT = "torchrun --nproc_per_node=N -m rnn_tui train ... --ddp"


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel job."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, batch: int) -> slice:
        """This rank's contiguous block of the global batch's rows."""
        per = batch // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)

    def check_batch(self, batch: int) -> None:
        if batch % self.world_size:
            raise ConfigError(f"--batch {batch} does not split evenly over {self.world_size} processes: "
                              f"use a multiple of {self.world_size} (it is the global batch; each rank "
                              f"takes batch/{self.world_size} rows)")

    # Thin wrappers, so the trainer reads as plain code and a 1-process job needs no branches.
    def all_reduce_mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if self.world_size > 1:
            dist.all_reduce(tensor)
            tensor /= self.world_size
        return tensor

    def all_gather_rows(self, tensor: torch.Tensor, dim: int) -> torch.Tensor:
        """Concatenate every rank's `tensor` along `dim` in rank order (the global batch)."""
        import torch.distributed as dist

        if self.world_size == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=dim)

    def broadcast_object(self, obj):
        """Rank 0's `obj` on every rank (small picklable values only: paths, error messages)."""
        import torch.distributed as dist

        if self.world_size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.world_size > 1:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def _env_int(name: str) -> int:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        raise ConfigError(f"--ddp: environment variable {name} is missing or not a number; "
                          f"launch with {TORCHRUN_HINT}") from None


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Join the process group torchrun set up; returns this rank's context.

    `device` is the training device name: "auto" takes CUDA when there is one. Raises
    ConfigError when not launched by torchrun and DeviceError when the device cannot be used.
    """
    import torch.distributed as dist

    if not launched_by_torchrun():
        raise ConfigError(f"--ddp needs the environment torchrun provides (RANK, WORLD_SIZE, "
                          f"MASTER_ADDR, MASTER_PORT): launch with {TORCHRUN_HINT}")
    if not dist.is_available():
        raise ConfigError("--ddp: this torch build has no torch.distributed support")
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    kind = (device or "auto").strip().lower().split(":", 1)[0]
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("--ddp --device cuda: no CUDA GPU is available (use --device cpu for gloo)")
        if local_rank >= torch.cuda.device_count():
            raise DeviceError(f"--ddp: local rank {local_rank} has no GPU of its own (this node has "
                              f"{torch.cuda.device_count()}): use --nproc_per_node <= the GPU count")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    elif kind == "cpu":
        dev, backend = torch.device("cpu"), "gloo"
    else:
        raise DeviceError(f"--ddp runs on cuda (nccl) or cpu (gloo), not {kind}")
    if not dist.is_initialized():
        kwargs = {"device_id": dev} if backend == "nccl" else {}
        try:
            dist.init_process_group(backend, rank=rank, world_size=world,
                                    timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
        except TypeError:  # torch without device_id
            dist.init_process_group(backend, rank=rank, world_size=world,
                                    timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, backend=backend, device=dev)


def shutdown(clean: bool = True) -> None:
    """Leave the process group. `clean`: every rank got here normally, so wait for the others
    first (a rank tearing its gloo/nccl connections down while rank 0 still writes the last
    checkpoint can abort the job); after an error, leave at once rather than wait forever."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if clean:
            try:
                dist.barrier()
            except Exception:  # noqa: BLE001 - a peer already gone: nothing left to wait for
                pass
        dist.destroy_process_group()
