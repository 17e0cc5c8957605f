"""Batches for truncated backpropagation through time: a token stream cut into contiguous rows
and served window by window, so a trainer can carry the hidden state across windows."""

from __future__ import annotations

import mmap

import numpy as np
import torch

from ..errors import ConfigError, CorpusError

# On a GPU a BatchStream keeps the whole stream on the device (as int64) up to this size: no
# copy per step. Larger streams, and every stream on the CPU, stay where they are (a memory map
# of the cache, in its stored integer type) and are widened one window at a time.
_ON_DEVICE_BYTES = 1 << 30
# A memory-mapped stream gives its pages back (madvise DONTNEED: they stay in the page cache)
# after about this many bytes of windows, so the process's RSS does not grow to the corpus.
_RELEASE_BYTES = 32 << 20


def _integer_stream(a) -> np.ndarray:
    """A 1-D integer array, as it is (a uint8 memory map stays one): no int64 copy."""
    a = a if isinstance(a, np.ndarray) else np.asarray(a)
    if a.dtype.kind not in "iu":
        a = a.astype(np.int64)
    if a.ndim != 1:
        raise ConfigError(f"a token stream must be 1-D, got shape {a.shape}")
    return a


class BatchStream:
    """Cuts a token stream into ``batch`` contiguous rows and serves ``seq_len`` windows.

    Row b of window k+1 continues exactly where row b of window k stopped, so a trainer can
    carry the hidden state across windows. When ``at_row_start`` is true the next window
    starts the rows again (a wrap), and carried state should be reset.

    The stream is kept as given, in its own integer type (a read-only memory map of the
    encoding cache stays a memory map: 1 byte a token for most character vocabularies); each
    window is gathered and widened to int64 when it is served, so memory grows with the batch,
    not with the corpus. On a GPU a stream up to 1 GiB as int64 is moved there once instead.
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
        ids = _integer_stream(ids)
        if targets is not None:
            targets = _integer_stream(targets)
            if targets.shape != ids.shape:
                raise ConfigError(f"targets shape {targets.shape} does not match ids shape {ids.shape}")
        # Next-token labels need one token past each window; explicit targets do not.
        extra = 1 if targets is None else 0
        need = batch * (seq_len + extra)
        if len(ids) < need:
            raise CorpusError(
                f"corpus {name!r} has {len(ids)} {split} token{'' if len(ids) == 1 else 's'}; one batch of "
                f"{batch} x {seq_len} "
                f"needs at least {need}: use a smaller --batch or --seq-len, or a longer text"
            )
        self.batch = batch
        self.seq_len = seq_len
        self.device = torch.device(device)
        self.has_targets = targets is not None
        self.row_len = len(ids) // batch
        self.windows_per_epoch = (self.row_len - extra) // seq_len
        # [batch, row_len] views of the stream (no copy: a memory map stays one).
        self._rows = ids[: batch * self.row_len].reshape(batch, self.row_len)
        # numpy keeps a memmap's mmap object on it (and on its views): the pages to give back,
        # for read-only maps only (dropping a copy-on-write map's pages would lose its edits).
        maps = {id(m): m for a in (ids, targets)
                if getattr(a, "mode", None) == "r" and (m := getattr(a, "_mmap", None)) is not None}
        self._mapped = list(maps.values())
        per_window = batch * (seq_len + 1) * ids.dtype.itemsize * (1 if targets is None else 2)
        self._release_every = max(1, _RELEASE_BYTES // per_window)
        self._served = 0
        self._trows = None if targets is None else targets[: batch * self.row_len].reshape(batch, self.row_len)
        self._on_device: torch.Tensor | None = None
        self._pinned: list[torch.Tensor] = []
        self._events: list = [None, None]
        self._slot = 0
        if self.device.type != "cpu":
            planes = 1 if targets is None else 2
            if batch * self.row_len * planes * 8 <= _ON_DEVICE_BYTES:
                # Time-major on the device: each window is one slice, no host copy per step.
                data = self._rows.T if targets is None else np.stack([self._rows.T, self._trows.T], axis=-1)
                self._on_device = torch.from_numpy(np.ascontiguousarray(data, dtype=np.int64)).to(self.device)
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

    @property
    def stored_dtype(self) -> np.dtype:
        """The integer type the stream is kept in (int64 only for a window being served)."""
        return self._rows.dtype

    def reset(self) -> None:
        self.epoch = 0
        self.window = 0

    def _host_window(self, start: int, length: int) -> np.ndarray:
        """[batch, length] (or [2, batch, length] with targets) int64: the one widened copy."""
        if self._trows is None:
            return self._rows[:, start:start + length].astype(np.int64)
        return np.stack([self._rows[:, start:start + length], self._trows[:, start:start + length]]).astype(np.int64)

    def _to_device(self, window: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(window)
        if self.device.type == "cpu":
            return host
        if self.device.type != "cuda":
            return host.to(self.device)
        # Two pinned staging buffers in turn: the copy is asynchronous, and a buffer is reused
        # only after its previous copy has finished (its event).
        if not self._pinned:
            self._pinned = [torch.empty(window.shape, dtype=torch.int64).pin_memory() for _ in range(2)]
        i, self._slot = self._slot, 1 - self._slot
        if self._events[i] is not None:
            self._events[i].synchronize()
        buf = self._pinned[i]
        buf.copy_(host)
        out = buf.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._events[i] = event
        return out

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) LongTensors [batch, seq_len] on the device."""
        start = self.window * self.seq_len
        L = self.seq_len
        if self._on_device is not None:
            if self.has_targets:
                w = self._on_device[start:start + L]
                x, y = w[..., 0].t().contiguous(), w[..., 1].t().contiguous()
            else:
                w = self._on_device[start:start + L + 1]
                x, y = w[:-1].t().contiguous(), w[1:].t().contiguous()
        elif self.has_targets:
            w = self._to_device(self._host_window(start, L))
            x, y = w[0], w[1]
        else:
            w = self._to_device(self._host_window(start, L + 1))
            x, y = w[:, :-1].contiguous(), w[:, 1:].contiguous()
        self._served += 1
        if self._mapped and self._served % self._release_every == 0:
            self._release()
        self.window += 1
        if self.window == self.windows_per_epoch:
            self.window = 0
            self.epoch += 1
        return x, y

    def _release(self) -> None:
        """Drop the mapped pages read so far from this process (read-only: nothing is lost;
        the next windows fault theirs back in from the page cache)."""
        for m in list(self._mapped):
            try:
                m.madvise(mmap.MADV_DONTNEED)
            except (AttributeError, OSError, ValueError):  # no madvise here, or a closed map
                self._mapped.remove(m)

    __next__ = next

    def __iter__(self) -> "BatchStream":
        return self
