"""Attribution: how much each earlier token counts for one prediction, by gradient x input or
by occlusion (each token replaced by a neutral one); `Attribution.words` sums it per word for
drawing under the sentence.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

import numpy as np
import torch

from .corpus import word_spans
from .errors import ConfigError, ProbeLimitError, VocabError
from .probes import MAX_TRACE_TOKENS, ProbeResult, encode_text, to_jsonable, zero_state

# Token-steps occlusion may run (n (n + 1) / 2 for n tokens: 2047 tokens): a few seconds of
# one CPU core at H=64.
MAX_OCCLUSION_WORK = 1 << 21
# Occlusion runs up to this many occluded copies side by side, in windows of this many steps,
# within this many floats of inputs, outputs and gates.
_OCCLUSION_ROWS = 256
_OCCLUSION_WINDOW = 128
_OCCLUSION_BATCH_FLOATS = 1 << 24

METHODS = ("grad_x_input", "occlusion")
NEUTRALS = ("auto", "space", "zero")


# ------------------------------------------------------------------------- attribution
@dataclass(frozen=True)
class WordScore:
    start: int  # first token of the word
    end: int  # one past its last token
    word: str
    score: float  # sum of its tokens' scores (NaN if none is visible from the position)
    category: str | None = None


@dataclass(frozen=True, eq=False)
class Attribution(ProbeResult):
    """How much each token up to `position` counts for the prediction made there.

    grad_x_input: score_k = <d log p(target) / d x_k, x_k> with x_k the embedded token.
    occlusion: score_k = log p(target) - log p(target | token k replaced by `neutral`).
    Positive: the token supports the target. NaN after the position (the model cannot see it).
    """

    tokens: tuple[str, ...]
    ids: np.ndarray  # int64 [T]
    position: int  # the prediction made after reading tokens[position]
    target_id: int
    target: str
    target_prob: float  # p(target) at the position
    actual_next: bool  # whether the target is the text's own next token
    method: str
    neutral: str | None  # occlusion's stand-in: "space" or "zero" (embedding)
    scores: np.ndarray  # float64 [T]
    seconds: float
    unknown: tuple[str, ...] = ()
    unknown_message: str | None = None
    offset: int = 0

    def words(self, categories: dict[str, str] | None = None) -> tuple[WordScore, ...]:
        """Scores summed per word (word level: per word token), with categories when given."""
        s = self.scores
        if self.tokens and all(len(t) == 1 for t in self.tokens):
            spans = word_spans("".join(self.tokens))
        else:
            spans = [(i, i + 1, t) for i, t in enumerate(self.tokens) if re.fullmatch(r"\w+", t)]
        out = []
        for a, b, w in spans:
            part = s[a:b]
            vis = part[~np.isnan(part)]
            score = float(vis.sum()) if vis.size else float("nan")
            cat = categories.get(w, categories.get(w.lower())) if categories else None
            out.append(WordScore(a, b, w, score, cat))
        return tuple(out)

    def to_json(self) -> dict:
        data = super().to_json()
        data["words"] = [to_jsonable(w.__dict__) for w in self.words()]
        return data


def _neutral_vector(lm, model, neutral: str) -> tuple[str, torch.Tensor]:
    if neutral not in NEUTRALS:
        raise ConfigError(f"unknown neutral token {neutral!r}: choose one of {', '.join(NEUTRALS)}")
    space = lm.vocab.stoi.get(" ")
    if neutral == "auto":
        neutral = "space" if (lm.vocab.level == "char" and space is not None) else "zero"
    if neutral == "space":
        if space is None:
            raise ConfigError("this vocabulary has no space token: occlude with neutral='zero'")
        return "space", model.embed.weight[space].detach()
    return "zero", torch.zeros_like(model.embed.weight[0]).detach()


def _fused_ok(model) -> bool:
    # The fused module applies dropout between layers in training mode; stepwise never does.
    return not (model.rnn.training and model.config.layers > 1 and model.config.dropout > 0)


def _expand_state(state, rows: int):
    if isinstance(state, tuple):
        return tuple(s.expand(-1, rows, -1).contiguous() for s in state)
    return state.expand(-1, rows, -1).contiguous()


def _occlusion_drops(model, x0: torch.Tensor, todo: np.ndarray, vec: torch.Tensor, tgt: int,
                     base: float) -> np.ndarray:
    """log p(target) minus the same with x_k replaced by vec, for each k in todo (sorted).

    Occluding token k leaves the steps before k as they were, so a block of rows k in
    [a, a + g) starts from the original state at a: n^2 / 2 token-steps instead of n^2. The
    block runs in windows of _OCCLUSION_WINDOW steps, so memory stays g x window.
    """
    n, E = x0.shape[1], x0.shape[2]
    cfg = model.config
    per_row = _OCCLUSION_WINDOW * (E + 6 * cfg.hidden * cfg.layers)
    g = int(max(1, min(_OCCLUSION_ROWS, _OCCLUSION_BATCH_FLOATS // per_row)))
    fused = _fused_ok(model)

    def run(x, state):
        if fused:
            out, state = model.rnn(x, state)
            return out[:, -1], state
        o = model.stepwise(inputs=x, state=state)
        return o.hidden[-1][-1], o.state

    blocks = [todo[i:i + g] for i in range(0, len(todo), g)]
    drops = []
    with torch.no_grad():
        state, at = zero_state(model), 0
        for block in blocks:
            a = int(block[0])
            if a > at:  # the original text up to this block, once
                _, state = run(x0[:, at:a], state)
                at = a
            rows = len(block)
            st = _expand_state(state, rows)
            rel = torch.as_tensor(block - a, device=x0.device)
            last = None
            for w in range(a, n, _OCCLUSION_WINDOW):
                xs = x0[:, w:w + _OCCLUSION_WINDOW].expand(rows, -1, -1).clone()
                hit = (rel >= w - a) & (rel < w - a + xs.shape[1])
                if bool(hit.any()):
                    xs[torch.nonzero(hit)[:, 0], rel[hit] - (w - a)] = vec
                last, st = run(xs, st)
            logp = torch.log_softmax(model.head(last).double(), -1)[:, tgt]
            drops.append(base - logp)
    return torch.cat(drops).cpu().numpy()


def attribution(lm, text: str, position: int | None = None, method: str = "grad_x_input",
                target: int | str | None = None, *, neutral: str = "auto", on_unknown: str = "skip",
                window: int | None = None, dtype: torch.dtype = torch.float32) -> Attribution:
    """Score every token up to `position` for the prediction of `target` made there.

    position: token index (negative counts from the end); default the last token, predicting
    what comes after the text. target: a token or id; default the text's own next token when
    there is one, else the model's top prediction. dtype float64 runs a float64 copy.
    """
    t0 = time.perf_counter()
    if method not in METHODS:
        raise ConfigError(f"unknown attribution method {method!r}: choose one of {', '.join(METHODS)}")
    ids, tokens, enc, offset = encode_text(lm, text, on_unknown, window, MAX_TRACE_TOKENS, "attribution")
    T = len(ids)
    if position is None:
        position = T - 1
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not -T <= position < T:
        raise ConfigError(f"position must be a token index in {-T}..{T - 1}, got {position!r}")
    P = int(position) % T
    model = lm.model
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if model.head.weight.dtype != dtype:
        import copy
        device = "cpu" if (dtype == torch.float64 and model.device.type == "mps") else model.device
        model = copy.deepcopy(model).to(device=device, dtype=dtype)
    V = lm.config.vocab_size
    x_ids = torch.as_tensor(ids[: P + 1], device=model.device)
    with torch.no_grad():
        x0 = model.embed(x_ids).detach()[None]  # [1, P+1, E]
        if _fused_ok(model):
            out, _ = model.rnn(x0, zero_state(model))
            logp_all = torch.log_softmax(model.head(out[0, -1]).double(), -1)
        else:
            last = model.stepwise(inputs=x0, state=zero_state(model)).logits[0, -1]
            logp_all = torch.log_softmax(last.double(), -1)
    actual = P < T - 1
    if target is None:
        tgt = int(ids[P + 1]) if actual else int(logp_all.argmax())
    elif isinstance(target, str):
        tgt = lm.vocab.id_of(target)
        if tgt is None:
            raise VocabError(f"target {target!r} is not in the model's vocabulary")
    elif isinstance(target, (int, np.integer)) and not isinstance(target, bool) and 0 <= target < V:
        tgt = int(target)
    else:
        raise ConfigError(f"target must be a token or an id in 0..{V - 1}, got {target!r}")
    actual = actual and tgt == int(ids[P + 1])
    base = float(logp_all[tgt])
    scores = np.full(T, np.nan)
    used = None
    if method == "grad_x_input":
        # stepwise is plain tensor code: it differentiates on every device (cuDNN's RNN
        # backward refuses to run in eval mode).
        with torch.enable_grad():
            x = x0.clone().requires_grad_(True)
            out = model.stepwise(inputs=x, state=zero_state(model))
            lp = torch.log_softmax(out.logits[0, -1], -1)[tgt]
            (g,) = torch.autograd.grad(lp, x)
        scores[: P + 1] = (g[0].double() * x0[0].double()).sum(-1).cpu().numpy()
    else:
        n = P + 1
        work = n * (n + 1) // 2
        if work > MAX_OCCLUSION_WORK:
            fit = (math.isqrt(8 * MAX_OCCLUSION_WORK + 1) - 1) // 2
            raise ProbeLimitError(f"occlusion: {n:,} tokens up to the position need {work:,} token-steps; "
                                  f"at most {fit:,} tokens fit: use window={fit} or "
                                  "method='grad_x_input'")
        used, vec = _neutral_vector(lm, model, neutral)
        # A token that already is the stand-in changes nothing: exactly 0, and not run.
        same = (x0[0] == vec).all(-1).cpu().numpy()
        todo = np.flatnonzero(~same)
        scores[:n] = 0.0
        if len(todo):
            scores[todo] = _occlusion_drops(model, x0, todo, vec, tgt, base)
    table = lm.vocab.shown
    return Attribution(
        tokens=tokens, ids=ids.copy(), position=P, target_id=tgt, target=table[tgt],
        target_prob=math.exp(base), actual_next=bool(actual), method=method, neutral=used,
        scores=scores, seconds=time.perf_counter() - t0, unknown=tuple(enc.unknown),
        unknown_message=enc.message(), offset=offset,
    )
