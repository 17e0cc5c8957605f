"""The checkpoint loader under a few hundred mutated files (run by test_fuzz_checkpoints.py in a
process of its own, under an address-space limit).

    python tests/fuzz_loader.py WORK_DIR SEED COUNT   -> one JSON line: outcomes and failures

Mutations, drawn from random.Random(SEED): config.json truncated, bit-flipped, with a value
replaced by one of another type or a huge number, a key deleted, nesting past the parser's
depth; model.safetensors truncated, bit-flipped, extended, with a huge header length or an
edited header. Half of the edits of config.json (and of the weights' header) also recompute
the hashes, as a tool that knows the format would, to reach the checks behind them.

Each load gets SIGALRM after ALARM_S seconds. An outcome is "same" (loaded, and the model,
vocabulary and weights are the original's), "refused" (an RnnTuiError), or a failure: a
different model loaded from an edit that kept the old hashes, any other exception (an
internal error, MemoryError past the limit), or a hang.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import resource
import shutil
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ALARM_S = 10
EXTRA_ADDRESS_SPACE = 1536 << 20  # what the loads may add to the address space torch itself maps
VALUES = [None, True, False, 0, -1, 1, 2.5, 2**63, 10**30, 1e308, "", "x" * 100_000, "lstm", [], [1, 2], {},
          {"a": 1}, [[[[[]]]]]]
HUGE = [16384, 2**31, 10**12, 10**30, 2**64]


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def _paths(value, prefix=()):
    """Every path to a value in a JSON tree (lists indexed), the root excluded."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(prefix + (k,))
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value[:40]):
            out.append(prefix + (i,))
            out.extend(_paths(v, prefix + (i,)))
    return out


def _set(tree, path, value=None, delete=False):
    node = tree
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


def _rehash(config: dict, weights: bytes | None = None) -> dict:
    from rnn_tui.engine.checkpoint import config_digest

    if weights is not None:
        config["tensors_sha256"] = hashlib.sha256(weights).hexdigest()
    if isinstance(config, dict) and "config_sha256" in config:
        try:
            config["config_sha256"] = config_digest(config)
        except (RecursionError, TypeError, ValueError):
            pass
    return config


def _flip(data: bytes, rng: random.Random, lo: int = 0, hi: int | None = None) -> bytes:
    data = bytearray(data)
    hi = len(data) if hi is None else hi
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(lo, max(lo + 1, hi))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def mutate(rng: random.Random, config_text: bytes, weights: bytes):
    """(label, new config.json bytes, new weights bytes, hashes kept: an edit must be refused
    or change nothing)."""
    config = json.loads(config_text)
    kind = rng.choice(["cfg-truncate", "cfg-flip", "cfg-value", "cfg-huge", "cfg-delete", "cfg-deep",
                       "w-truncate", "w-flip-header", "w-flip-data", "w-extend", "w-header-length",
                       "w-header-edit"])
    rehash = rng.random() < 0.5
    if kind == "cfg-truncate":
        return kind, config_text[:rng.randrange(len(config_text))], weights, True
    if kind == "cfg-flip":
        return kind, _flip(config_text, rng), weights, True
    if kind in ("cfg-value", "cfg-delete"):
        path = rng.choice(_paths(config))
        if kind == "cfg-delete":
            _set(config, path, delete=True)
        else:
            _set(config, path, copy.deepcopy(rng.choice(VALUES)))
        label = f"{kind}:{'/'.join(map(str, path))[:60]}"
    elif kind == "cfg-huge":
        key = rng.choice(["hidden", "embed", "layers", "vocab_size"])
        config["model"][key] = rng.choice(HUGE)
        if key == "vocab_size" and rng.random() < 0.3:
            config["vocab"]["tokens"] = [f"t{i}" for i in range(min(config["model"][key], 300_000))]
            config["vocab"]["level"] = "word"
        label = f"{kind}:{key}={config['model'][key]}"
    elif kind == "cfg-deep":
        depth = rng.choice([900, 5000, 100_000])
        text = json.dumps(config).replace('"corpus": "grammar"', '"corpus": ' + "[" * depth + "]" * depth)
        return f"{kind}:{depth}", text.encode(), weights, True
    else:
        return _mutate_weights(kind, rng, config, weights, rehash)
    if rehash:
        _rehash(config)
    return label, json.dumps(config).encode(), weights, not rehash


def _mutate_weights(kind, rng, config, weights, rehash):
    n = int.from_bytes(weights[:8], "little")
    if kind == "w-truncate":
        new = weights[:rng.randrange(len(weights))]
    elif kind == "w-flip-header":
        new = _flip(weights, rng, 0, 8 + n)
    elif kind == "w-flip-data":
        new = _flip(weights, rng, 8 + n)
    elif kind == "w-extend":
        new = weights + bytes(rng.randrange(1, 5000))
    elif kind == "w-header-length":
        new = rng.choice([0, 1, 7, n - 1, n + 1, 2**31, 2**63, 2**64 - 1]).to_bytes(8, "little") + weights[8:]
    else:  # an edited header, padded to its old length when it fits
        header = json.loads(weights[8:8 + n])
        name = rng.choice([k for k in header if k != "__metadata__"])
        field = rng.choice(["dtype", "shape", "data_offsets", "metadata"])
        if field == "dtype":
            header[name]["dtype"] = rng.choice(["F16", "F64", "I64", "BOOL", "X9", None])
        elif field == "shape":
            header[name]["shape"] = rng.choice([[], [0], [10**12], [-1, 3], [1] * 20, "3"])
        elif field == "data_offsets":
            header[name]["data_offsets"] = rng.choice([[0, 0], [0, 2**62], [5, 1], [-8, 0], None])
        else:
            header["__metadata__"] = rng.choice([{"rnn_tui_format": "9"}, {"x": 1}, [], None])
        raw = json.dumps(header).encode()
        raw += b" " * max(0, n - len(raw))
        new = len(raw).to_bytes(8, "little") + raw + weights[8 + n:]
        kind = f"{kind}:{field}"
    if rehash:
        _rehash(config, new)
    return kind, json.dumps(config).encode(), new, not rehash


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def main(work: Path, seed: int, count: int) -> dict:
    import torch
    from conftest import make_tiny_lm

    from rnn_tui.engine.checkpoint import load_model, save_checkpoint
    from rnn_tui.engine.errors import RnnTuiError

    torch.set_num_threads(1)
    lm = make_tiny_lm("lstm", layers=2, seed=seed)
    original = save_checkpoint(work / "original", lm.model, lm.vocab, {"corpus": "grammar", "level": "char"})
    reference = load_model(original, "cpu")
    config_text = (original / "config.json").read_bytes()
    weights = (original / "model.safetensors").read_bytes()
    limit = _address_space() + EXTRA_ADDRESS_SPACE
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(seed)
    outcomes = {"same": 0, "refused": 0, "other model (hashes recomputed)": 0}
    failures = []
    for i in range(count):
        label, cfg, w, hashes_kept = mutate(rng, config_text, weights)
        case = work / f"case{i}"
        case.mkdir()
        (case / "config.json").write_bytes(cfg)
        (case / "model.safetensors").write_bytes(w)
        signal.alarm(ALARM_S)
        try:
            got = load_model(case, "cpu")
            signal.alarm(0)
            sa, sb = got.model.state_dict(), reference.model.state_dict()
            same = (got.vocab == reference.vocab and got.config == reference.config and sa.keys() == sb.keys()
                    and all(torch.equal(sa[k], sb[k]) for k in sa))
            if same:
                outcomes["same"] += 1
            elif hashes_kept:
                failures.append(f"{label}: a different model loaded without a word")
            else:
                outcomes["other model (hashes recomputed)"] += 1
        except RnnTuiError as exc:
            signal.alarm(0)
            outcomes["refused"] += 1
            if "\n" in str(exc) or len(str(exc)) > 1200:
                failures.append(f"{label}: a message of {len(str(exc))} characters")
        except Hang:
            failures.append(f"{label}: no answer in {ALARM_S} s")
        except BaseException as exc:  # noqa: BLE001 - what the test is looking for
            signal.alarm(0)
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:200]}")
        shutil.rmtree(case, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"outcomes": outcomes, "failures": failures, "peak_mb": peak_mb, "limit_mb": limit >> 20}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
