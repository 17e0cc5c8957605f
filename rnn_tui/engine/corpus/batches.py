"""Batches for truncated backpropagation through time: a token stream cut into contiguous rows
and served window by window, so a trainer can carry the hidden state across windows."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, CorpusError

# A CUDA BatchStream keeps its data on the GPU up to this size, else in pinned host memory.
_ON_DEVICE_BYTES = 1 << 30


class BatchStream:
    """Cuts a token stream into ``batch`` contiguous rows and serves ``seq_len`` windows.

    Row b of window k+1 continues exactly where row b of window k stopped, so a trainer can
    carry the hidden state across windows. When ``at_row_start`` is true the next window
    starts the rows again (a wrap), and carried state should be reset.
    """

    def __init__(
        self,
        ids: np.ndarray,
        targets: np.ndarray | None,
        batch: int,
        seq_len: int,
        device: str | torch.device = "cpu",
        *,
        name: str = "corpus",
        split: str = "training",
    ) -> None:
        if batch < 1 or seq_len < 1:
            raise ConfigError(f"batch and seq_len must be at least 1, got {batch} and {seq_len}")
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1:
            raise ConfigError(f"a token stream must be 1-D, got shape {ids.shape}")
        if targets is not None:
            targets = np.asarray(targets, dtype=np.int64)
            if targets.shape != ids.shape:
                raise ConfigError(f"targets shape {targets.shape} does not match ids shape {ids.shape}")
        # Next-token labels need one token past each window; explicit targets do not.
        extra = 1 if targets is None else 0
        need = batch * (seq_len + extra)
        if len(ids) < need:
            raise CorpusError(
                f"corpus {name!r} has {len(ids)} {split} tokens; one batch of {batch} x {seq_len} "
                f"needs at least {need}: use a smaller --batch or --seq-len, or a longer text"
            )
        self.batch = batch
        self.seq_len = seq_len
        self.device = torch.device(device)
        self.has_targets = targets is not None
        self.row_len = len(ids) // batch
        self.windows_per_epoch = (self.row_len - extra) // seq_len
        rows = ids[: batch * self.row_len].reshape(batch, self.row_len)
        # Time-major storage makes every window one contiguous slice, which a pinned host
        # tensor can copy to the GPU asynchronously.
        if targets is None:
            data = np.ascontiguousarray(rows.T)
        else:
            trows = targets[: batch * self.row_len].reshape(batch, self.row_len)
            data = np.ascontiguousarray(np.stack([rows.T, trows.T], axis=-1))
        tensor = torch.from_numpy(data)
        if self.device.type == "cuda" and tensor.numel() * 8 > _ON_DEVICE_BYTES:
            tensor = tensor.pin_memory()
        elif self.device.type != "cpu":
            tensor = tensor.to(self.device)  # small enough to live on the device: no copy per step
        self._data = tensor
        self.epoch = 0
        self.window = 0

    @property
    def progress(self) -> float:
        """Epochs done, fractional."""
        return self.epoch + self.window / self.windows_per_epoch

    @property
    def at_row_start(self) -> bool:
        return self.window == 0

    @property
    def tokens_per_window(self) -> int:
        return self.batch * self.seq_len

    def reset(self) -> None:
        self.epoch = 0
        self.window = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) LongTensors [batch, seq_len] on the device."""
        start = self.window * self.seq_len
        if self.has_targets:
            w = self._data[start : start + self.seq_len]
            w = w.to(self.device, non_blocking=True)
            x, y = w[..., 0].t().contiguous(), w[..., 1].t().contiguous()
        else:
            w = self._data[start : start + self.seq_len + 1]
            w = w.to(self.device, non_blocking=True)
            x, y = w[:-1].t().contiguous(), w[1:].t().contiguous()
        self.window += 1
        if self.window == self.windows_per_epoch:
            self.window = 0
            self.epoch += 1
        return x, y

    __next__ = next

    def __iter__(self) -> "BatchStream":
        return self
