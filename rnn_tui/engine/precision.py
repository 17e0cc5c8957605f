"""--amp: bfloat16 autocast for training, and the parts of the model kept out of it.

``check_amp`` refuses --amp where bfloat16 autocast cannot run (and says when it runs but
rarely helps); ``autocast`` is the context a training or validation step runs under;
``recurrence_in_float32`` keeps the fused recurrent module in float32 inside it.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .errors import ConfigError


def check_amp(amp: bool, device: torch.device, notes: list[str]) -> None:
    """Raise ConfigError when --amp cannot run on `device`; append a note when it runs but is
    not worth it (the CPU)."""
    if not amp:
        return
    kind = device.type
    if kind == "cuda":
        try:
            ok = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:
            ok = torch.cuda.is_bf16_supported()
        if not ok:
            raise ConfigError("--amp uses bfloat16 autocast, which this GPU does not support natively "
                              "(it needs compute capability 8.0 or newer, e.g. A100, H100): drop --amp")
    elif kind == "cpu":
        notes.append("--amp on the CPU: bfloat16 autocast runs (the output layer and the loss; "
                     "the recurrence stays float32) but rarely speeds anything up there; "
                     "--amp is meant for CUDA")
    else:
        try:
            with torch.autocast(device_type=kind, dtype=torch.bfloat16):
                pass
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"--amp: bfloat16 autocast is not available on {kind}: {exc}") from None


def autocast(amp: bool, device: torch.device):
    """bfloat16 autocast on `device` with --amp, else a context that does nothing."""
    if not amp:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def recurrence_in_float32(rnn: torch.nn.Module, device_type: str) -> None:
    """Run the fused recurrent module outside autocast, in float32.

    Under CUDA autocast torch casts cuDNN RNNs to float16 whatever the autocast dtype (its
    `_cudnn_rnn` autocast wrapper hard-codes half precision), and float16 gradients without a
    GradScaler underflow through time. So --amp autocasts the output layer (the big matmul
    for a word vocabulary) and the loss to bfloat16, and leaves the recurrence in float32
    (TF32 tensor cores on Ampere and newer). Done on the training model only (the snapshot
    template and saved checkpoints are untouched), on every device alike so the CPU tests
    run the path a GPU takes.
    """
    forward = rnn.forward

    def forward_fp32(input, hx=None):
        with torch.autocast(device_type=device_type, enabled=False):
            if hx is not None:
                hx = tuple(h.float() for h in hx) if isinstance(hx, tuple) else hx.float()
            return forward(input.float(), hx)

    rnn.forward = forward_fp32
