"""Reading a safetensors file that may come from anywhere: its header first, then only as many
bytes as the header (and the caller's expected shapes) allow.

A safetensors file is an 8-byte little-endian header length, a JSON header naming every
tensor's dtype, shape and byte range, then the bytes of the tensors. :func:`read_header`
reads and checks the header alone (a bounded read): every entry well formed, the byte ranges
contiguous from 0, each range exactly its dtype x shape, the file exactly as long as the
header says. The caller compares the shapes with what its config expects *before* anything
large is read or built, so a file (or a config) that claims a huge model costs nothing; only
then :func:`read_blob` reads the file whole (a regular file, never a FIFO or a device).

Loading the bytes (``safetensors.torch.load``) is the caller's: it never runs code (no pickle).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..runs.files import open_regular

MAX_HEADER_BYTES = 4 << 20  # ~100 bytes per tensor: room for tens of thousands of tensors
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
MAX_DIMS = 8


class TensorFileError(ValueError):
    """The file is not a well-formed safetensors file (truncated, edited, or something else)."""


@dataclass(frozen=True)
class Header:
    size: int  # bytes of the whole file
    tensors: dict[str, tuple[str, tuple[int, ...]]]  # name -> (dtype, shape)
    metadata: dict[str, str]


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entry(name: str, spec) -> tuple[str, tuple[int, ...], int, int]:
    if not isinstance(spec, dict):
        raise TensorFileError(f"header entry {name[:60]!r} is not an object")
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise TensorFileError(f"tensor {name[:60]!r} has an unknown dtype {str(dtype)[:20]!r}")
    if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_whole(d) for d in shape):
        raise TensorFileError(f"tensor {name[:60]!r} has a bad shape")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_whole(o) for o in offsets)
            or offsets[0] > offsets[1]):
        raise TensorFileError(f"tensor {name[:60]!r} has bad data offsets")
    numel = 1
    for d in shape:
        numel *= d
    if offsets[1] - offsets[0] != numel * DTYPE_BYTES[dtype]:
        raise TensorFileError(f"tensor {name[:60]!r} is {offsets[1] - offsets[0]} bytes, its dtype and "
                              f"shape make {numel * DTYPE_BYTES[dtype]}")
    return dtype, tuple(shape), offsets[0], offsets[1]


def read_header(path: str | os.PathLike) -> Header:
    """The checked header of a safetensors file (reads at most MAX_HEADER_BYTES + 8 bytes).

    TensorFileError when it is not a well-formed safetensors file; OSError (``UnsafePath`` for
    a FIFO, a device...) when it cannot be read."""
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 8:
            raise TensorFileError(f"{size} bytes: shorter than a safetensors header")
        n = int.from_bytes(fh.read(8), "little")
        if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
            raise TensorFileError(f"{size} bytes, with a header length of {n} bytes: truncated or not safetensors")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise TensorFileError("its header is not valid JSON") from None
    if not isinstance(header, dict):
        raise TensorFileError("its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise TensorFileError("its header metadata is not a map of strings")
    entries = sorted((_entry(name, spec) + (name,) for name, spec in header.items()), key=lambda e: e[2])
    end = 0
    for _, _, begin, stop, name in entries:
        if begin != end:
            raise TensorFileError(f"tensor {name[:60]!r} does not start where the one before it ends")
        end = stop
    if 8 + n + end != size:
        raise TensorFileError(f"{size:,} bytes, but its header describes {8 + n + end:,}: truncated or extended")
    tensors = {name: (dtype, shape) for dtype, shape, _, _, name in entries}
    return Header(size=size, tensors=tensors, metadata=dict(metadata))


def shape_problem(header: Header, expected: dict[str, tuple[int, ...]], dtypes=FLOAT_DTYPES) -> str | None:
    """Why the tensors of `header` are not exactly `expected` (names and shapes), or None."""
    for name, shape in expected.items():
        if name not in header.tensors:
            return f"{name} is missing from the weights"
        dtype, got = header.tensors[name]
        if got != tuple(shape):
            return f"{name} has shape {list(got)}, the config expects {list(shape)}"
        if dtype not in dtypes:
            return f"{name} has dtype {dtype}, not a floating-point type"
    extra = sorted(set(header.tensors) - set(expected))
    if extra:
        return f"the weights have tensors the config does not: {', '.join(e[:60] for e in extra[:3])}"
    return None


def read_blob(path: str | os.PathLike, header: Header) -> bytes:
    """The whole file, which `read_header` described (a regular file of exactly header.size
    bytes); TensorFileError when it changed size since."""
    with open_regular(path) as fh:
        data = fh.read(header.size + 1)
    if len(data) != header.size:
        raise TensorFileError(f"it changed size while being read ({header.size:,} -> {len(data):,} bytes)")
    return data
