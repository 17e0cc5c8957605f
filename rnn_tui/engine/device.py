"""Device choice: auto picks CUDA, else MPS, else CPU."""

from __future__ import annotations

import os

import torch

from .config import DEVICE_CHOICES
from .errors import DeviceError


def pick_device(name: str | None = "auto") -> torch.device:
    """Resolve a device name; raise DeviceError when the named one is not usable here."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":", 1)[0]
    if base not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {name!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    if base == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' was asked for but no CUDA GPU is available (try --device cpu)")
    if base == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError("device 'mps' was asked for but Apple MPS is not available (try --device cpu)")
    try:
        return torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise DeviceError(f"bad device {name!r}: {exc}") from None


def describe_device(device: torch.device) -> str:
    """A short human label, e.g. 'cuda:0 (NVIDIA H100)' or 'cpu'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error (CUDA, MPS, or the CPU allocator's "can't allocate
    memory"), so callers can report it instead of crashing."""
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if (oom_type is not None and isinstance(exc, oom_type)) or isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def memory_bytes(device: torch.device) -> int | None:
    """The memory of a device (a GPU's, or the machine's for the CPU); None when unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        if device.type == "cpu":
            return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None
    return None


# Bytes per parameter training needs at least: weights, gradients and Adam's two moments.
TRAIN_BYTES_PER_PARAM = 16


def check_fits(model_config, device) -> None:
    """A model whose training cannot fit in the device's memory is refused before it is built
    (building it would end in "can't allocate memory", or in the kernel killing the process)."""
    params = model_config.parameter_count()
    memory = memory_bytes(device)
    need = params * TRAIN_BYTES_PER_PARAM
    if memory is not None and need > memory:
        c = model_config
        raise DeviceError(f"a model of {params:,} parameters (hidden {c.hidden}, embed {c.embed}, {c.layers} "
                          f"layers) needs about {need / 2**30:,.0f} GiB to train, more than the "
                          f"{memory / 2**30:,.0f} GiB of {describe_device(device)}: use a smaller --hidden, "
                          f"--embed or --layers")
