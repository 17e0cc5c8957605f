"""Models made elsewhere: a user's Embedding + nn.RNN/LSTM/GRU + Linear, as an rnn-tui model.

Two ways in, one mapping:

- `from_module(module, vocab)`: the user's own nn.Module; its embedding, recurrent module and
  output layer are found by type (or named: ``embedding="encoder", rnn="rnn", head="decoder"``).
- `from_state_dict(tensors, vocab)`: a state_dict in torch's standard names, e.g. pytorch/
  examples' word_language_model (``encoder.weight``, ``rnn.weight_ih_l0`` ... ``decoder.weight``,
  RNN_TANH / RNN_RELU / LSTM / GRU, tied weights), read by `read_state_dict` from a ``.pt`` /
  ``.pth`` with ``torch.load(weights_only=True)`` (a pickled whole model is refused, never
  unpickled) or from ``.safetensors``.

The result is a `LoadedModel` whose hidden states, gates and next-token probabilities are the
user's module's own (tests hold them equal to 1e-5). What cannot be mapped is said in one line
(`Mapped.notes`): missing biases are zeros, a tied head is the embedding, dropout does nothing
at inference; a bidirectional or projected LSTM, or a layer between the recurrence and the
head, is refused with a message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .config import MAX_WIDTH, ModelConfig
from .errors import CheckpointError, ConfigError
from .model import LoadedModel, RNNLM

_GATES = {1: "rnn", 4: "lstm", 3: "gru"}
_LAYER = re.compile(r"^(?P<prefix>.*?)weight_ih_l(?P<layer>\d+)$")
MAX_STATE_BYTES = 4 << 30  # a state_dict larger than this is not a language model we can show


@dataclass
class Mapped:
    lm: LoadedModel
    notes: list[str] = field(default_factory=list)  # what was filled in or left out, in words

    def note_line(self) -> str | None:
        return "; ".join(self.notes) if self.notes else None


def _vocab(vocab, level: str, tokenizer=None):
    from .corpus import Vocab

    if isinstance(vocab, Vocab):
        return vocab
    if level == "bpe" or tokenizer is not None:
        if level != "bpe":
            raise ConfigError(f"a tokenizer goes with level='bpe' (level is {level!r})")
        if tokenizer is None:
            raise ConfigError("a subword vocabulary is its tokenizer's: give tokenizer= (a tokenizers.Tokenizer, "
                              "or the path of its tokenizer.json)")
        bpe = Vocab.from_tokenizer(tokenizer)
        if vocab is not None and list(bpe.tokens) != [str(t) for t in (vocab if not isinstance(vocab, dict)
                                                                        else sorted(vocab, key=vocab.get))]:
            raise ConfigError("the vocabulary given is not the tokenizer's pieces in id order: give the tokenizer "
                              "alone")
        return bpe
    if isinstance(vocab, dict):  # stoi: token -> id
        tokens = [None] * len(vocab)
        for tok, i in vocab.items():
            if not isinstance(i, int) or not 0 <= i < len(vocab) or tokens[i] is not None:
                raise ConfigError("the vocabulary mapping must give every id 0..N-1 exactly once")
            tokens[i] = tok
        vocab = tokens
    tokens = [str(t) for t in vocab]
    if len(set(tokens)) != len(tokens):
        raise ConfigError("the vocabulary lists a token twice: each id needs its own token")
    from .corpus.vocab import _SPECIAL

    if level == "char" and any(len(t) != 1 and not _SPECIAL.fullmatch(t) for t in tokens):
        long = next(t for t in tokens if len(t) != 1 and not _SPECIAL.fullmatch(t))
        raise ConfigError(f"a character vocabulary has one character per token (or a special one such as "
                          f"<pad>), not {long[:20]!r}: is it a word vocabulary (level word)?")
    unk = next((t for t in ("<unk>", "<UNK>", "[UNK]") if t in tokens), None)
    return Vocab(tokens=tuple(tokens), level=level, unk=unk)


def _rnn_prefix(tensors: dict[str, torch.Tensor]) -> str:
    prefixes = {m.group("prefix") for k in tensors if (m := _LAYER.match(k))}
    if not prefixes:
        raise CheckpointError("no recurrent layer in it: a state_dict of nn.RNN, nn.LSTM or nn.GRU has "
                              "weight_ih_l0 and weight_hh_l0")
    if len(prefixes) > 1:
        names = ", ".join(sorted(p.rstrip(".") or "(top level)" for p in prefixes))
        raise CheckpointError(f"several recurrent modules ({names}): rnn-tui maps one embedding, one "
                              f"recurrent stack and one output layer; name the one to use")
    return prefixes.pop()


def from_state_dict(tensors: dict[str, torch.Tensor], vocab, level: str = "char", *, nonlinearity: str = "tanh",
                    embedding: str | None = None, head: str | None = None, meta: dict | None = None) -> Mapped:
    """Map a state_dict (see the module docstring) onto an rnn-tui model over ``vocab``
    (tokens in id order, a token->id dict, or a Vocab)."""
    notes: list[str] = []
    tensors = {k: v for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    prefix = _rnn_prefix(tensors)
    rec = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix) and _is_rnn_key(k[len(prefix):])}
    if any(k.endswith("_reverse") for k in rec):
        raise CheckpointError("a bidirectional recurrent layer reads the text both ways: a language model "
                              "reads left to right, so it cannot be shown here")
    if any(k.startswith("weight_hr") for k in rec):
        raise CheckpointError("an LSTM with proj_size has a projected state rnn-tui does not model")
    layers = 1 + max(int(_LAYER.match(k).group("layer")) for k in rec if _LAYER.match(k))
    w_ih, w_hh = rec["weight_ih_l0"], rec.get("weight_hh_l0")
    if w_hh is None or w_hh.ndim != 2:
        raise CheckpointError(f"{prefix}weight_hh_l0 is missing: not a recurrent layer")
    hidden, inputs = int(w_hh.shape[1]), int(w_ih.shape[1])
    gates = int(w_ih.shape[0]) // hidden if w_ih.shape[0] % hidden == 0 else 0
    cell = _GATES.get(gates)
    if cell is None:
        raise CheckpointError(f"{prefix}weight_ih_l0 has {w_ih.shape[0]} rows for {hidden} hidden units: "
                              "not an RNN (1x), GRU (3x) or LSTM (4x)")
    if hidden > MAX_WIDTH or inputs > MAX_WIDTH:
        raise CheckpointError(f"hidden {hidden} / input {inputs} is over rnn-tui's limit of {MAX_WIDTH}")
    voc = _vocab(vocab, level)
    V = len(voc.tokens)

    def weights(rows: int, cols: int, skip: tuple[str, ...] = ()) -> list[str]:
        return [k for k, v in tensors.items() if k.endswith("weight") and v.ndim == 2 and tuple(v.shape) == (rows, cols)
                and k not in skip and not (k.startswith(prefix) and _is_rnn_key(k[len(prefix):]))]

    if embedding is not None:
        if embedding not in tensors:
            raise CheckpointError(f"no tensor named {embedding!r} for the embedding")
        emb_key = embedding
    else:
        found = weights(V, inputs)
        if not found:
            rows = sorted({int(v.shape[0]) for v in tensors.values() if v.ndim == 2 and v.shape[1] == inputs
                           and int(v.shape[0]) != V} - {int(tensors[prefix + "weight_hh_l0"].shape[0])})
            has = f"the model's embedding has {rows[0]} rows" if len(rows) == 1 else "no weight has that shape"
            raise CheckpointError(f"the vocabulary has {V} tokens but {has} (of {inputs} columns, the recurrent "
                                  f"layer's input size): give the vocabulary the model was trained with")
        emb_key = _prefer(found, ("encoder.weight", "embedding.weight", "embed.weight", "emb.weight"))
    if tuple(tensors[emb_key].shape) != (V, inputs):
        raise CheckpointError(f"{emb_key} is {tuple(tensors[emb_key].shape)}, not {V} tokens x {inputs}: does the "
                              f"vocabulary match the model?")
    state: dict[str, torch.Tensor] = {"embed.weight": tensors[emb_key]}
    head_key = head if head is not None else None
    if head_key is None:
        found = weights(V, hidden, skip=(emb_key,))
        if found:
            head_key = _prefer(found, ("decoder.weight", "head.weight", "fc.weight", "linear.weight", "out.weight"))
    if head_key is not None:
        if head_key not in tensors or tuple(tensors[head_key].shape) != (V, hidden):
            raise CheckpointError(f"{head_key} is not an output layer from {hidden} hidden units to {V} tokens")
        state["head.weight"] = tensors[head_key]
        bias = tensors.get(head_key[: -len("weight")] + "bias")
        if bias is None:
            notes.append("the output layer has no bias: zeros")
            bias = torch.zeros(V)
        state["head.bias"] = bias
    elif inputs == hidden:
        state["head.weight"] = tensors[emb_key]
        state["head.bias"] = torch.zeros(V)
        notes.append("no output layer: tied to the embedding, with a zero bias")
    else:
        raise CheckpointError(f"no output layer from {hidden} hidden units to {V} tokens: rnn-tui shows "
                              f"embedding -> recurrence -> output; a layer in between cannot be mapped")
    for layer in range(layers):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            key = f"{kind}_l{layer}"
            if key in rec:
                state[f"rnn.{key}"] = rec[key]
            elif kind.startswith("bias"):
                state[f"rnn.{key}"] = torch.zeros(gates * hidden)
                if not any("no biases" in n for n in notes):
                    notes.append("the recurrent layer has no biases (bias=False): zeros")
            else:
                raise CheckpointError(f"{prefix}{key} is missing: layer {layer} is incomplete")
    config = ModelConfig(vocab_size=V, cell=cell, embed=inputs, hidden=hidden, layers=layers,
                         nonlinearity=nonlinearity if cell == "rnn" else "auto")
    model = RNNLM(config)
    try:
        model.load_state_dict({k: v.detach().to(torch.float32) for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"the weights do not fit a {cell} H={hidden}: {str(exc).splitlines()[0][:200]}") from None
    model.eval()
    used = {emb_key, head_key}
    left = sorted(k for k in tensors if not (k.startswith(prefix) and _is_rnn_key(k[len(prefix):]))
                  and k not in used and not (k.endswith("bias") and k[:-4] + "weight" in used))
    if left:
        shown = ", ".join(left[:4]) + (f" and {len(left) - 4} more" if len(left) > 4 else "")
        notes.append(f"not mapped (rnn-tui shows embedding -> recurrence -> output only): {shown}")
    info = {"corpus": None, "level": level, "imported": {"cell": cell, "notes": notes}}
    info.update(meta or {})
    return Mapped(LoadedModel(model=model, vocab=voc, meta=info), notes)


def _is_rnn_key(key: str) -> bool:
    return bool(re.match(r"^(weight|bias)_(ih|hh|hr)_l\d+(_reverse)?$", key))


def _prefer(keys: list[str], names: tuple[str, ...]) -> str:
    for name in names:
        for k in keys:
            if k == name or k.endswith("." + name):
                return k
    if len(keys) > 1:
        raise CheckpointError(f"several candidates ({', '.join(keys[:4])}): name the one to use")
    return keys[0]


def from_module(module: nn.Module, vocab, level: str = "char", *, embedding: str | None = None,
                rnn: str | None = None, head: str | None = None) -> Mapped:
    """Map the user's own module (see the module docstring). Submodules are found by type
    unless named; the weights are copied, the user's module is not changed."""
    named = dict(module.named_modules())

    def pick(name: str | None, kinds, what: str):
        if name is not None:
            if name not in named:
                raise ConfigError(f"the module has no submodule {name!r} (for the {what})")
            return name, named[name]
        found = [(n, m) for n, m in named.items() if isinstance(m, kinds)]
        if len(found) != 1:
            names = ", ".join(n or "(the module itself)" for n, _ in found) or "none"
            raise ConfigError(f"found {len(found)} candidates for the {what} ({names}): name it, e.g. "
                              f"checkpoint(model, {what.split()[0]}='...')")
        return found[0]

    rnn_name, rnn_mod = pick(rnn, (nn.RNN, nn.LSTM, nn.GRU), "rnn (recurrent module)")
    if getattr(rnn_mod, "bidirectional", False):
        raise CheckpointError("a bidirectional recurrent layer reads the text both ways: not a language model")
    emb_name, emb_mod = pick(embedding, nn.Embedding, "embedding")
    if head is None:
        outs = [(n, m) for n, m in named.items() if isinstance(m, nn.Linear)
                and m.in_features == rnn_mod.hidden_size and m.out_features == emb_mod.num_embeddings]
        head_name = outs[0][0] if len(outs) == 1 else None
        if len(outs) > 1:
            raise ConfigError(f"several output layers could be the head ({', '.join(n for n, _ in outs)}): "
                              f"name it, e.g. checkpoint(model, head='decoder')")
    else:
        head_name, _ = pick(head, nn.Linear, "head (output layer)")
    tensors = {f"embedding.{k}": v for k, v in emb_mod.state_dict().items()}
    tensors.update({f"rnn.{k}": v for k, v in rnn_mod.state_dict().items()})
    if head_name is not None:
        tensors.update({f"head.{k}": v for k, v in named[head_name].state_dict().items()})
    nonlinearity = getattr(rnn_mod, "nonlinearity", "tanh")
    mapped = from_state_dict(tensors, vocab, level, nonlinearity=nonlinearity, embedding="embedding.weight",
                             head="head.weight" if head_name is not None else None)
    if emb_mod.num_embeddings != len(mapped.lm.vocab.tokens):
        raise ConfigError(f"the embedding has {emb_mod.num_embeddings} rows, the vocabulary "
                          f"{len(mapped.lm.vocab.tokens)} tokens")
    mapped.lm.meta["imported"]["modules"] = {"embedding": emb_name, "rnn": rnn_name, "head": head_name}
    left = _unmapped(named, [n for n in (emb_name, rnn_name, head_name) if n is not None])
    if left:
        shown = ", ".join(f"{n} ({type(m).__name__})" for n, m in left[:4]) + (" ..." if len(left) > 4 else "")
        mapped.notes.append(f"not mapped: {shown}; rnn-tui's copy is embedding -> recurrence -> output "
                            f"layer, so if these sit between them its numbers are not your model's")
        mapped.lm.meta["imported"]["notes"] = list(mapped.notes)
    return mapped


# Modules that change nothing a language model computes at inference (or only its loss).
_HARMLESS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.LogSoftmax,
             nn.CrossEntropyLoss, nn.NLLLoss)


def _unmapped(named: dict, mapped: list[str]) -> list[tuple[str, nn.Module]]:
    """The leaf modules outside the mapped ones that could change the numbers (a LayerNorm,
    a projection, an activation between the recurrence and the output)."""
    def inside(name: str) -> bool:
        return any(name == m or name.startswith(m + ".") for m in mapped)

    return [(n, m) for n, m in named.items()
            if n and not inside(n) and not list(m.children()) and not isinstance(m, _HARMLESS)]


def vocab_size_of(tensors: dict[str, torch.Tensor]) -> int:
    """How many tokens the model has: the rows of its embedding (the matrix whose columns are
    the recurrent layer's inputs)."""
    prefix = _rnn_prefix(tensors)
    inputs = int(tensors[prefix + "weight_ih_l0"].shape[1])
    rows = [int(v.shape[0]) for k, v in tensors.items() if k.endswith("weight") and v.ndim == 2
            and v.shape[1] == inputs and not (k.startswith(prefix) and _is_rnn_key(k[len(prefix):]))]
    if not rows:
        raise CheckpointError(f"no embedding with {inputs} columns (the recurrent layer's input size)")
    return rows[0]


# ------------------------------------------------------------------------ files
def _looks_safetensors(head: bytes) -> bool:
    """A safetensors file starts with its JSON header's length (8 bytes, little-endian), then "{"."""
    return len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < MAX_STATE_BYTES


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``.pt`` / ``.pth`` read with
    ``torch.load(weights_only=True)``: a pickled whole model is refused, never unpickled."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_STATE_BYTES:
        raise CheckpointError(f"{path} is {size / 2**30:.1f} GiB: larger than any model rnn-tui can show")
    with open(path, "rb") as f:
        head = f.read(16)
    if path.suffix == ".safetensors" or _looks_safetensors(head):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a readable safetensors file: {str(exc)[:200]}") from None
    kind = "zip" if head.startswith(b"PK\x03\x04") else "pickle" if head[:1] == b"\x80" and head[1:2] in (
        b"\x02", b"\x03", b"\x04", b"\x05") else None
    if not head:
        raise CheckpointError(f"{path} is empty: not a torch file")
    if kind is None:
        raise CheckpointError(f"{path} is not a torch file: torch.save writes a zip archive (or, before torch "
                              f"1.6, a pickle), and this starts with the bytes {head[:4].hex(' ')}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the unpickler refused: say what to do instead
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found:
            raise CheckpointError(
                f"{path} holds a pickled Python object (a {found.group(1)}: a whole model?), which rnn-tui "
                "never unpickles: save its weights instead, torch.save(model.state_dict(), 'model.pt')") from None
        what = ("a zip archive torch cannot read: truncated, damaged, or not written by torch.save"
                if kind == "zip" else "a damaged torch file, or a pickle that is not a state_dict")
        raise CheckpointError(f"{path} is {what}") from None
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        # A training checkpoint: {"state_dict" | "model" | "model_state_dict": ..., "epoch": ...}
        inner = [k for k, v in obj.items() if isinstance(v, dict) and any(isinstance(t, torch.Tensor) for t in v.values())
                 and not str(k).startswith("optim")]
        if len(inner) == 1:
            obj = obj[inner[0]]
        elif len(inner) > 1:
            raise CheckpointError(f"{path} holds several state_dicts ({', '.join(map(str, inner[:6]))}): save the "
                                  f"model's alone, torch.save(model.state_dict(), 'model.pt')")
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} holds no state_dict (a mapping of names to tensors)")
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _json_tokens(path: Path, data) -> list[str]:
    """A JSON vocabulary: a list of tokens in id order, or a {token: id} mapping."""
    if isinstance(data, dict) and "model" in data and ("pre_tokenizer" in data or "added_tokens" in data):
        raise ConfigError(f"{path} is a tokenizer.json: import it with --level bpe")
    if isinstance(data, dict):
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
            raise ConfigError(f"{path}: a JSON vocabulary is a list of tokens in id order, or {{token: id}}")
        by_id = {v: str(k) for k, v in data.items()}
        if sorted(by_id) != list(range(len(data))):
            raise ConfigError(f"{path}: the ids of a {{token: id}} vocabulary must be 0..{len(data) - 1}, "
                              f"each once")
        return [by_id[i] for i in range(len(data))]
    if not isinstance(data, list):
        raise ConfigError(f"{path}: a JSON vocabulary is a list of tokens in id order, or {{token: id}}")
    return [str(t) for t in data]


def read_vocab(path: str | os.PathLike, size: int, level: str):
    """The tokens of a vocabulary file: one token per line (word_language_model's idx2word
    order), a JSON list, or a corpus to rebuild it from (word_language_model's order: words by
    first appearance, ``<eos>`` ending each line; characters sorted). ``size``: the model's.
    Level bpe: the Vocab of a tokenizer.json."""
    import json

    from .corpus import Vocab

    path = Path(path)
    if level == "bpe":  # the tokenizer.json it was trained with
        vocab = Vocab.from_tokenizer(path)
        if len(vocab) != size:
            raise ConfigError(f"{path} has {len(vocab)} pieces but the model reads {size} tokens: "
                              f"is it the model's tokenizer?")
        return vocab
    from .corpus.subword import read_user_file

    raw = read_user_file(path, 1 << 30, "vocabulary")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        kind = " (a pickle? rnn-tui never unpickles)" if raw[:1] == b"\x80" else ""
        raise ConfigError(f"{path} is not UTF-8 text{kind}: write the vocabulary as one token per line "
                          f"in id order, or as a JSON list") from None
    if path.suffix == ".json" or text.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            if path.suffix == ".json":
                raise ConfigError(f"{path} is not valid JSON: {exc}") from None
        else:
            return _json_tokens(path, data)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) == size:
        return lines
    if level == "word":  # a corpus: word_language_model's Dictionary order
        seen: dict[str, None] = {}
        for line in lines:
            for word in line.split() + ["<eos>"]:
                seen.setdefault(word, None)
        tokens = list(seen)
    else:
        tokens = list(Vocab.build(text, "char").tokens)
    if len(tokens) != size:
        raise ConfigError(f"{path} gives {len(tokens)} tokens (as a corpus) and has {len(lines)} lines, but "
                          f"the model has {size}: give the vocabulary it was trained with")
    return tokens
