"""Experiments: named presets that train and probe small networks on the real engine and
return frozen results of numpy arrays.

    from rnn_tui.engine.experiments import EXPERIMENTS, get_experiment
    exp = get_experiment("parity")
    result = exp.run(exp.settings(quick=True), stop=event, progress=lambda f, msg: ...)
    result.summary()      # readable text
    result.to_json()      # plain dict (NaN/inf -> None)

Every experiment has a settings dataclass (frozen, with defaults that run on a CPU in
seconds), `quick` overrides for a smoke run, and a `run(settings, stop, progress)` that
returns early (with `stopped=True` and NaN where nothing was measured) once `stop` is set.
`progress(fraction, message)` is called from the running thread. Runs are deterministic
given the settings' seed; `Experiment.run` limits torch to one CPU thread by default (these
models are tiny: more threads only add contention, and one thread is bit-reproducible).
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable

import numpy as np
import torch

from . import dynamics
from .corpus import (
    GRAMMAR_LEXICON,
    GRAMMAR_TEMPLATES,
    TOY_ALPHABET,
    AgreementItem,
    Corpus,
    Vocab,
    agreement_items,
    grammar_categories,
    grammar_sentences,
    load_corpus,
    word_spans,
)
from .errors import ConfigError
from .model import CELLS, LoadedModel, ModelConfig, build_model, set_spectral_radius
from .probes import ProbeResult, gradient_profile
from .train import TrainConfig, Trainer

Progress = Callable[[float, str], None]


# ============================================================================ plumbing
class _Ctx:
    """Stop flag and progress reporting for one run, mapped onto a sub-range of [0, 1]."""

    def __init__(self, stop: threading.Event | None, progress: Progress | None, lo=0.0, hi=1.0):
        self.stop = stop
        self.progress = progress
        self.lo, self.hi = lo, hi

    @property
    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def report(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            f = min(1.0, max(0.0, fraction))
            self.progress(self.lo + (self.hi - self.lo) * f, message)

    def span(self, lo: float, hi: float) -> "_Ctx":
        w = self.hi - self.lo
        return _Ctx(self.stop, self.progress, self.lo + w * lo, self.lo + w * hi)

    def part(self, i: int, n: int) -> "_Ctx":
        return self.span(i / n, (i + 1) / n)

    def train(self, cfg: TrainConfig, corpus: Corpus, label: str, model=None,
              on_metrics: Callable | None = None) -> Trainer:
        """Train to cfg.steps (or until stopped), reporting progress about 20 times.

        The returned trainer carries the run's TrainResult as `.result`."""
        trainer = Trainer(cfg, corpus=corpus, model=model)
        every = max(1, cfg.steps // 20)

        def hook(m):
            if on_metrics is not None:
                on_metrics(m)
            if m.step % every == 0 or m.step == cfg.steps:
                self.report(m.step / max(1, cfg.steps), f"{label}: step {m.step}/{cfg.steps} loss {m.loss:.3f}")

        trainer.on_metrics = hook
        self.report(0.0, f"{label}: training")
        trainer.result = trainer.run(stop=self.stop)
        return trainer


_THREADS_LOCK = threading.Lock()


class _Threads:
    """Set torch's CPU thread count for a run and put it back afterwards."""

    def __init__(self, n: int | None):
        self.n = n
        self.before = None

    def __enter__(self):
        if self.n:
            with _THREADS_LOCK:
                self.before = torch.get_num_threads()
                torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.before is not None:
            with _THREADS_LOCK:
                torch.set_num_threads(self.before)


def _curve(trainer: Trainer, attr: str = "loss") -> np.ndarray:
    return np.asarray([getattr(m, attr) for m in trainer.history], dtype=np.float64)


def _pad(rows: list[np.ndarray], width: int | None = None) -> np.ndarray:
    """Stack 1-D arrays of unequal length into [R, width], NaN-padded."""
    width = max((len(r) for r in rows), default=0) if width is None else width
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, :min(len(r), width)] = r[:width]
    return out


def _lm(trainer: Trainer) -> LoadedModel:
    return trainer.snapshot()


def _final_loss(trainer: Trainer) -> float:
    v = trainer.last_val_loss
    return float("nan") if v is None else float(v)


# ============================================================================ settings
def _check_settings(s) -> None:
    """Common checks: whole numbers are whole and positive, tuples are not empty."""
    for f in fields(s):
        v = getattr(s, f.name)
        if f.name in ("seed",):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"seed must be a whole number >= 0, got {v!r}")
        elif isinstance(f.default, bool):
            if not isinstance(v, bool):
                raise ConfigError(f"{f.name} must be true or false, got {v!r}")
        elif isinstance(f.default, int) and not isinstance(f.default, bool):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{f.name} must be a positive whole number, got {v!r}")
        elif isinstance(f.default, float):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"{f.name} must be a positive number, got {v!r}")
        elif isinstance(f.default, tuple):
            if not isinstance(v, tuple) or not v:
                raise ConfigError(f"{f.name} must be a non-empty list, got {v!r}")


def _coerce(value, default):
    """JSON-ish input (lists) to the settings' own types (tuples)."""
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _choose(name: str, value, options) -> None:
    if value not in options:
        raise ConfigError(f"unknown {name} {value!r}: choose one of {', '.join(map(str, options))}")


# ============================================================================ results
@dataclass(frozen=True, eq=False, kw_only=True)
class ExperimentResult(ProbeResult):
    """Shared by every experiment's result: what ran, how long, and whether it was stopped."""

    experiment: str = ""
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0
    stopped: bool = False

    def findings(self) -> list[str]:
        """Short measured statements, one per line."""
        return []

    def table(self) -> list[str]:
        """The main numbers as text rows."""
        return []

    def summary(self) -> str:
        head = f"{self.experiment}: {self.seconds:.1f} s" + ("  (stopped early)" if self.stopped else "")
        return "\n".join([head, *self.table(), *("* " + f for f in self.findings())])

    def to_json(self) -> dict:
        data = super().to_json()
        data["findings"] = self.findings()
        return data


def _nanmean(x) -> float:
    """Mean of the measured values; NaN (without a warning) when nothing was measured."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


# ============================================================================ agreement tools
# Singular/plural pairs of the agreement corpus's nouns: used to build minimal pairs.
def _noun_pairs() -> dict[str, str]:
    from .corpus import _AGR_NOUNS  # the bundled generator's own list, so the two never drift apart

    flip = {}
    for sg, pl in _AGR_NOUNS:
        flip[sg], flip[pl] = pl, sg
    return flip


def _with_words(item: AgreementItem, flip: dict[str, str], first: int = 0, last: int | None = None) -> AgreementItem:
    """The item with prefix words[first:last] swapped through `flip` and the other verb form:
    the shared body of flip_number and flip_subject."""
    words = item.prefix.split(" ")
    stop = len(words) if last is None else last
    words = [flip.get(w, w) if first <= i < stop else w for i, w in enumerate(words)]
    prefix = " ".join(words)
    rest = item.text[len(item.prefix) + len(item.correct):]
    return AgreementItem(prefix + item.wrong + rest, prefix, item.wrong, item.correct,
                         item.distractor_words, not item.plural)


def flip_number(item: AgreementItem) -> AgreementItem:
    """The same sentence with every noun and pronoun in the other number (the verb to match).

    Unlike flip_subject, the clause keeps its relation to the subject: an all-attractor item
    stays one, so the pair differs in number only ("the man that they saw" / "the men that he
    saw").
    """
    from .corpus import _AGR_PLACES, _AGR_PRONOUNS

    flip = _noun_pairs()
    for sg, pl in _AGR_PLACES:
        flip[sg], flip[pl] = pl, sg
    for sg, pl in zip(*_AGR_PRONOUNS):  # he <-> we, she <-> they
        flip[sg], flip[pl] = pl, sg
    return _with_words(item, flip)


def flip_subject(item: AgreementItem) -> AgreementItem:
    """The same sentence with the subject in the other number (and the verb to match).

    The distractor clause is untouched, so an "opposite" item (every clause noun has the other
    number) becomes a congruent one (every clause noun has the subject's number).
    """
    return _with_words(item, _noun_pairs(), 1, 2)  # word 1 is the subject ("the cat ...")


def balanced_agreement_corpus(level: str = "char", size: int = 8000, seed: int = 0,
                              max_distractor: int = 12) -> Corpus:
    """Agreement sentences whose clause nouns carry no information about the verb.

    Each sentence is an all-attractor item (every clause noun has the other number from the
    subject) or its subject-flipped twin (every clause noun agrees), with equal odds: the
    clause says nothing about the verb, only the subject (0-12 words back) does, and half the
    training sentences are the hard case the test items are. The bundled `agreement` corpus
    is unbiased too (each clause noun's number is a coin flip) but has few all-attractor
    sentences, so it teaches the hard case less directly.
    """
    rng = random.Random(seed)
    per = size // (max_distractor + 1) + 1
    items: list[AgreementItem] = []
    for d in range(max_distractor + 1):
        items += agreement_items(d, per, seed=seed * 1009 + d)
    rng.shuffle(items)
    items = [flip_subject(it) if rng.random() < 0.5 else it for it in items[:size]]
    text = " ".join(it.text for it in items)
    if level == "char":
        vocab = Vocab(tokens=tuple(sorted(set(TOY_ALPHABET) | set(text))), level="char")
    else:
        vocab = Vocab.build(text, level)
    ids = vocab.encode(text, on_unknown="unk").ids
    cut = len(ids) - max(1, int(round(len(ids) * 0.1)))
    from .corpus import agreement_categories

    return Corpus(name="agreement-balanced", vocab=vocab, train=ids[:cut], val=ids[cut:],
                  categories=agreement_categories(),
                  description=f"subject-verb agreement, {size} sentences, clause nouns independent of "
                              f"the verb, 0-{max_distractor} distractor words",
                  examples=tuple(it.text for it in items[:2]))


def agreement_corpus(kind: str, level: str, seed: int) -> Corpus:
    """The corpus an agreement run trains on: "balanced" (the default) or the "bundled" one."""
    if kind == "balanced":
        return balanced_agreement_corpus(level, seed=seed)
    return load_corpus("agreement", level, seed=seed)


@torch.no_grad()
def continuation_logprobs(lm: LoadedModel, prefixes: list[str], continuations: list[str],
                          batch: int = 256) -> np.ndarray:
    """log P(continuation | prefix) in nats, summed over the continuation's tokens: [N].

    Both are encoded with the model's vocabulary (unknown words map to <unk> where the
    vocabulary has one, else are skipped). Rows are right-padded: the model is causal, so
    padding after a row's end never changes what it computed before.
    """
    on_unknown = "unk" if lm.vocab.unk is not None else "skip"
    pairs = []
    for p, c in zip(prefixes, continuations):
        ip = lm.vocab.encode(p, on_unknown=on_unknown).ids
        ic = lm.vocab.encode(c, on_unknown=on_unknown).ids
        if len(ip) == 0 or len(ic) == 0:
            raise ConfigError(f"cannot score {c!r} after {p!r}: nothing left after encoding")
        pairs.append((ip, ic))
    model = lm.model
    was_training = model.training
    model.eval()
    out = np.empty(len(pairs))
    try:
        for s in range(0, len(pairs), batch):
            chunk = pairs[s:s + batch]
            width = max(len(a) + len(b) for a, b in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            for i, (a, b) in enumerate(chunk):
                ids[i, :len(a) + len(b)] = np.concatenate([a, b])
            logits, _ = model(torch.as_tensor(ids, device=model.device))
            lp = torch.log_softmax(logits.double(), dim=-1).cpu().numpy()
            for i, (a, b) in enumerate(chunk):
                pos = len(a) - 1 + np.arange(len(b))  # logits at t predict token t+1
                out[s + i] = lp[i, pos, b].sum()
    finally:
        model.train(was_training)
    return out


@dataclass(frozen=True, eq=False)
class AgreementCurve:
    """Agreement at each distractor length, over minimal pairs.

    Each pair is an all-attractor item (every clause noun has the other number: the
    "incongruent" half) and the same item with its subject flipped ("congruent"). The right
    verb's probability is P(right) / (P(right) + P(wrong)) with P(verb) the product of its
    per-token probabilities after ". " + prefix (char level: the characters of "was " /
    "were ", trailing space included so "was" cannot be the start of "waited"). A model that
    reads the verb off the clause scores 50% over the pairs; only one that remembers the
    subject scores 100%.
    """

    distractors: np.ndarray  # int64 [D]
    p_correct: np.ndarray  # float64 [D]: mean probability of the right form, both halves
    accuracy: np.ndarray  # float64 [D]: fraction of items where the right form is more likely
    accuracy_incongruent: np.ndarray  # [D]: the all-attractor half
    accuracy_congruent: np.ndarray  # [D]: the subject-flipped half
    items: int  # items per length (pairs x 2)


def agreement_curve(lm: LoadedModel, distractors, pairs: int = 20, seed: int = 1000,
                    stop: threading.Event | None = None) -> AgreementCurve:
    """Measure agreement at every distractor length (see AgreementCurve)."""
    ds = np.asarray(list(distractors), dtype=np.int64)
    cont_sep = " " if lm.vocab.level == "char" else ""
    p = np.full(len(ds), np.nan)
    acc, inc, con = p.copy(), p.copy(), p.copy()
    for j, d in enumerate(ds):
        if stop is not None and stop.is_set():
            break
        base = agreement_items(int(d), pairs, seed=seed + int(d))
        items = base + [flip_subject(it) for it in base]
        prefixes = [". " + it.prefix for it in items]
        right = continuation_logprobs(lm, prefixes, [it.correct + cont_sep for it in items])
        wrong = continuation_logprobs(lm, prefixes, [it.wrong + cont_sep for it in items])
        pc = 1.0 / (1.0 + np.exp(np.clip(wrong - right, -700, 700)))
        ok = pc > 0.5
        p[j], acc[j] = pc.mean(), ok.mean()
        inc[j], con[j] = ok[:pairs].mean(), ok[pairs:].mean()
    return AgreementCurve(distractors=ds, p_correct=p, accuracy=acc, accuracy_incongruent=inc,
                          accuracy_congruent=con, items=2 * pairs)


def longest_solved(distractors: np.ndarray, accuracy: np.ndarray, level: float = 0.9) -> int:
    """The largest distractor length d such that accuracy >= level at every tested length <= d
    (-1 if not even the shortest)."""
    best = -1
    for d, a in zip(distractors, accuracy):
        if not a >= level:
            break
        best = int(d)
    return best


def recurrent_parameters(cell: str, hidden: int, inputs: int) -> int:
    """Weights and biases of one recurrent layer: gates x (H x In + H x H + 2H)."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    return gates * (hidden * inputs + hidden * hidden + 2 * hidden)


# ============================================================================ 1. parity
@dataclass(frozen=True)
class ParitySettings:
    hidden: int = 2
    embed: int = 3
    lr: float = 0.05
    starts: int = 64  # random starts screened together; most 2-unit nets stall in a local minimum
    screen_steps: int = 300  # steps on 1-2 bit sequences: enough to tell a good start from a stuck one
    steps: int = 600  # then the best start trains this many steps on the bundled parity corpus
    seq_len: int = 32
    batch: int = 32
    corpus_size: int = 4000  # parity sequences of 2-16 bits
    trajectory_tokens: int = 160
    seed: int = 0
    device: str = "cpu"


def _parity_stage(lo: int, hi: int, n: int, seed: int) -> Corpus:
    """Like the bundled parity corpus but with sequences of lo..hi bits (a curriculum stage)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(lo, hi + 1, size=n)
    ids, targets = [], []
    for length in lengths:
        bits = rng.integers(0, 2, size=length)
        ids += [0, *(1 + bits)]
        targets += [0, *(1 + np.cumsum(bits) % 2)]
    ids_a, tg_a = np.asarray(ids, dtype=np.int64), np.asarray(targets, dtype=np.int64)
    cut = int(len(ids_a) * 0.9)
    return Corpus(name="parity", vocab=Vocab(tokens=(".", "0", "1"), level="char"),
                  train=ids_a[:cut], val=ids_a[cut:], train_targets=tg_a[:cut], val_targets=tg_a[cut:],
                  description=f"parity curriculum: {lo}-{hi} bits")


_RNN_PARAMS = ("embed.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
               "head.weight", "head.bias")


def screen_starts(config: ModelConfig, seeds: list[int], corpus: Corpus, steps: int, lr: float,
                  batch: int = 32, seq_len: int = 8, clip: float = 1.0,
                  stop: threading.Event | None = None) -> tuple[list[dict], np.ndarray]:
    """Train many small 1-layer vanilla RNNs side by side, one per seed, on the same batches.

    Each start is initialised exactly as `build_model(config, seed)` would, and gets what the
    Trainer would give it: Adam, its own global-norm clip, truncated BPTT with carried state.
    The population shares one Python loop, so 64 starts cost about as much as one.
    Returns (state dicts, validation accuracy of each) so the best can go on in an RNNLM.
    """
    from .corpus import BatchStream

    if config.cell != "rnn" or config.layers != 1:
        raise ConfigError("screen_starts trains 1-layer vanilla RNNs only")
    models = [build_model(config, seed=sd) for sd in seeds]
    params = [torch.stack([dict(m.named_parameters())[n].detach() for m in models]).requires_grad_(True)
              for n in _RNN_PARAMS]
    opt = torch.optim.Adam(params, lr=lr)
    act = torch.tanh if config.nonlinearity == "tanh" else torch.relu
    K = len(seeds)

    def forward(x, h):
        emb, w_ih, w_hh, b_ih, b_hh, w_o, b_o = params
        e = emb[:, x]  # [K, B, T, E]
        pre = torch.einsum("kbte,khe->kbth", e, w_ih) + (b_ih + b_hh)[:, None, None, :]
        outs = []
        for t in range(x.shape[1]):
            h = act(pre[:, :, t] + torch.einsum("kbh,kgh->kbg", h, w_hh))
            outs.append(h)
        hs = torch.stack(outs, dim=2)  # [K, B, T, H]
        return torch.einsum("kbth,kvh->kbtv", hs, w_o) + b_o[:, None, None, :], h

    stream = BatchStream(corpus.train, corpus.train_targets, batch, seq_len, name="parity screen")
    h = None
    for _ in range(steps):
        if stop is not None and stop.is_set():
            break
        if stream.at_row_start or h is None:
            h = torch.zeros(K, batch, config.hidden)
        x, y = stream.next()
        logits, h = forward(x, h)
        h = h.detach()
        # Summed over starts: each start's gradient is its own mean cross entropy's.
        losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(K, 1).reshape(-1),
                                                   reduction="none").reshape(K, -1).mean(1)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        with torch.no_grad():
            norms = torch.sqrt(sum(p.grad.reshape(K, -1).square().sum(1) for p in params))
            scale = (clip / (norms + 1e-6)).clamp(max=1.0)
            for p in params:
                p.grad.mul_(scale.reshape(-1, *([1] * (p.dim() - 1))))
        opt.step()
    with torch.no_grad():
        x = torch.as_tensor(corpus.val)[None]
        logits, _ = forward(x, torch.zeros(K, 1, config.hidden))
        pred = logits[:, 0].argmax(-1).numpy()
    bits = corpus.val != 0
    acc = (pred[:, bits] == corpus.val_targets[bits]).mean(1)
    states = [{n: p[k].detach().clone() for n, p in zip(_RNN_PARAMS, params)} for k in range(K)]
    return states, acc


@torch.no_grad()
def _parity_eval(model, ids: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(accuracy over bit positions, hidden states [T, H], bit index within its sequence [T]).

    The whole split is read as one stream from a zero state: the net must reset itself at "."."""
    model.eval()
    x = torch.as_tensor(ids, device=model.device)[None]
    out, _ = model.rnn(model.embed(x))
    pred = model.head(out)[0].argmax(-1).cpu().numpy()
    bits = ids != 0
    acc = float((pred[bits] == targets[bits]).mean()) if bits.any() else float("nan")
    # position of each bit in its sequence: 1, 2, ... after every "."
    pos = np.zeros(len(ids), dtype=np.int64)
    run = 0
    for t, tok in enumerate(ids):
        run = 0 if tok == 0 else run + 1
        pos[t] = run
    return acc, out[0].cpu().numpy(), pos


@dataclass(frozen=True, eq=False, kw_only=True)
class ParityResult(ExperimentResult):
    accuracy: float  # validation bits whose running parity the net gets right
    accuracy_by_position: np.ndarray  # [16]: by bit index in the sequence (1..16)
    screen_accuracy: np.ndarray  # [starts]: accuracy of each random start on 1-2 bit sequences
    chosen_start: int  # the start that went on to full training (seed = settings seed + it)
    steps: np.ndarray  # [S] training steps of the full run
    loss: np.ndarray  # [S]
    tokens: tuple[str, ...]  # the trajectory's tokens
    hidden: np.ndarray  # [T, H]: hidden state after each token
    parity: np.ndarray  # int [T]: running parity after each token (0 even, 1 odd, -1 at ".")
    centroid_even: np.ndarray  # [H]
    centroid_odd: np.ndarray  # [H]

    def table(self) -> list[str]:
        solved = int((self.screen_accuracy >= 0.99).sum())
        return [f"accuracy on validation bits: {self.accuracy:.3f}",
                f"{solved} of {len(self.screen_accuracy)} random starts solved 2-bit XOR in a short trial "
                f"(the rest stall near {np.median(self.screen_accuracy):.2f}); start {self.chosen_start} "
                "was trained on",
                "accuracy by bit position 1..16: " + " ".join(_fmt(a, 2) for a in self.accuracy_by_position)]

    def findings(self) -> list[str]:
        out = []
        if math.isfinite(self.accuracy):
            word = "learned" if self.accuracy > 0.95 else "NOT learned"
            out.append(f"parity {word} by a {self.hidden.shape[1]}-unit vanilla RNN: {self.accuracy:.1%} of bits")
        gap = float(np.linalg.norm(self.centroid_even - self.centroid_odd))
        if math.isfinite(gap):
            out.append(f"even and odd states sit in separate regions (centroids {gap:.2f} apart)")
        return out


def run_parity(s: ParitySettings, ctx: _Ctx) -> dict:
    screen = _parity_stage(1, 2, 3000, s.seed)
    mcfg = ModelConfig(vocab_size=3, cell="rnn", hidden=s.hidden, embed=s.embed)
    ctx.report(0.0, f"screening {s.starts} random starts on 1-2 bit sequences")
    states, screen_acc = screen_starts(mcfg, [s.seed + r for r in range(s.starts)], screen, s.screen_steps,
                                       s.lr, batch=s.batch, stop=ctx.stop)
    chosen = int(np.argmax(screen_acc))  # ties: the lowest seed
    model = build_model(mcfg, seed=s.seed + chosen)
    model.load_state_dict(states[chosen], strict=True)
    ctx.report(0.3, f"start {chosen} solves 2-bit XOR at {screen_acc[chosen]:.0%}: training on parity")
    corpus = load_corpus("parity", seed=s.seed, size=s.corpus_size)
    cfg = TrainConfig(corpus="parity", cell="rnn", hidden=s.hidden, embed=s.embed, lr=s.lr, steps=s.steps,
                      seq_len=s.seq_len, batch=s.batch, eval_every=0, eval_batches=2,
                      seed=s.seed + chosen, device=s.device)
    steps, loss = np.zeros(0, dtype=np.int64), np.zeros(0)
    if not ctx.stopped:
        tr = ctx.span(0.3, 0.95).train(cfg, corpus, "parity", model=model)
        model, steps, loss = tr.model, _curve(tr, "step").astype(np.int64), _curve(tr)  # steps are counts
    # Evaluated even when stopped: whatever the net has learned so far.
    acc, hidden_all, pos = _parity_eval(model, corpus.val, corpus.val_targets)
    with torch.no_grad():
        pred = model(torch.as_tensor(corpus.val, device=model.device)[None])[0][0].argmax(-1).cpu().numpy()
    by_pos = np.full(16, np.nan)
    for k in range(1, 17):
        m = pos == k
        if m.any():
            by_pos[k - 1] = (pred[m] == corpus.val_targets[m]).mean()
    n = min(s.trajectory_tokens, len(corpus.val))
    ids = corpus.val[:n]
    par_all = np.where(corpus.val == 0, -1, corpus.val_targets - 1)
    # centroids over the whole validation split, not only the trajectory shown
    even, odd = hidden_all[par_all == 0], hidden_all[par_all == 1]
    ctx.report(1.0, "parity: done")
    return dict(accuracy=acc, accuracy_by_position=by_pos, screen_accuracy=screen_acc, chosen_start=chosen,
                steps=steps, loss=loss, tokens=tuple(corpus.vocab.tokens[i] for i in ids), hidden=hidden_all[:n],
                parity=par_all[:n].astype(np.int64),
                centroid_even=even.mean(0) if len(even) else np.full(s.hidden, np.nan),
                centroid_odd=odd.mean(0) if len(odd) else np.full(s.hidden, np.nan))


# ============================================================================ 2. init schemes
PROBE_TEXT = ("the cat that we saw yesterday was happy. the girl reads the book. "
              "the lion chases the mouse. the dragon eats the man.")


@dataclass(frozen=True)
class InitSettings:
    schemes: tuple = ("default", "orthogonal", "xavier", "identity", "echo")
    cell: str = "rnn"
    hidden: int = 64
    embed: int = 32
    steps: int = 300
    seq_len: int = 64
    batch: int = 32
    lr: float = 3e-3
    clip: float = 1.0
    corpus: str = "grammar"
    radius_every: int = 25
    probe_text: str = PROBE_TEXT
    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True, eq=False, kw_only=True)
class InitResult(ExperimentResult):
    schemes: tuple[str, ...]
    steps: np.ndarray  # [S]
    loss: np.ndarray  # [R, S] training loss per step (NaN after a divergence)
    val_loss: np.ndarray  # [R]
    diverged: np.ndarray  # bool [R]
    tokens: tuple[str, ...]  # the probe text's tokens
    grad_init: np.ndarray  # [R, T]: ||dL/dh_t|| before training (loss at the last token)
    grad_final: np.ndarray  # [R, T]: the same after training
    ratio_init: np.ndarray  # [R]: first/last position of grad_init
    ratio_final: np.ndarray  # [R]
    radius_steps: np.ndarray  # [P]
    radius: np.ndarray  # [R, P]: spectral radius of the main recurrent block while training

    def table(self) -> list[str]:
        rows = [f"{'scheme':<11} {'val loss':>8} {'|g1|/|gT| init':>15} {'after':>10} {'radius 0->end':>15}"]
        for i, name in enumerate(self.schemes):
            r = self.radius[i][np.isfinite(self.radius[i])]
            rad = f"{r[0]:.2f}->{r[-1]:.2f}" if len(r) else "-"
            div = " (diverged)" if self.diverged[i] else ""
            rows.append(f"{name:<11} {_fmt(self.val_loss[i]):>8} {self.ratio_init[i]:>15.2e} "
                        f"{self.ratio_final[i]:>10.2e} {rad:>15}{div}")
        return rows

    def findings(self) -> list[str]:
        ok = np.isfinite(self.val_loss)
        out = []
        if ok.any():
            best = int(np.nanargmin(self.val_loss))
            out.append(f"lowest validation loss: {self.schemes[best]} ({self.val_loss[best]:.3f} nats)")
        if np.isfinite(self.ratio_init).any():
            keep = int(np.nanargmax(self.ratio_init))
            out.append(f"at initialisation the gradient reaching the first token is largest for "
                       f"{self.schemes[keep]} ({self.ratio_init[keep]:.2g} of the last token's)")
        moved = [(n, r[np.isfinite(r)]) for n, r in zip(self.schemes, self.radius)]
        moved = [f"{n} {r[0]:.2f}->{r[-1]:.2f}" for n, r in moved if len(r) > 1]
        if moved:
            out.append("spectral radius of W_hh while training: " + ", ".join(moved))
        return out


def run_init_schemes(s: InitSettings, ctx: _Ctx) -> dict:
    for name in s.schemes:
        _choose("init scheme", name, ("default", "orthogonal", "xavier", "identity", "spectral", "echo"))
    corpus = load_corpus(s.corpus, "char", seed=s.seed)
    R = len(s.schemes)
    losses, vals, div, g0, g1, radii = [], np.full(R, np.nan), np.zeros(R, bool), [], [], []
    n_rad = s.steps // s.radius_every + 1
    radius_steps = np.arange(n_rad) * s.radius_every
    tokens: tuple[str, ...] = ()
    for i, scheme in enumerate(s.schemes):
        if ctx.stopped:
            break
        cfg = TrainConfig(corpus=s.corpus, cell=s.cell, hidden=s.hidden, embed=s.embed, init=scheme,
                          steps=s.steps, seq_len=s.seq_len, batch=s.batch, lr=s.lr, clip=s.clip,
                          eval_every=0, eval_batches=4, seed=s.seed, device=s.device)
        model = build_model(cfg.model_config(len(corpus.vocab)), seed=s.seed)
        lm0 = LoadedModel(model=model, vocab=corpus.vocab)
        gp0 = gradient_profile(lm0, s.probe_text)
        tokens = gp0.tokens
        rec = dynamics.RadiusRecorder(model, every=s.radius_every)
        tr = ctx.part(i, R).train(cfg, corpus, f"init {scheme}", model=model, on_metrics=rec)
        gp1 = gradient_profile(_lm(tr), s.probe_text)
        hist = rec.history()
        losses.append(_curve(tr))
        vals[i] = _final_loss(tr)
        div[i] = tr.result.diverged
        g0.append(gp0.dh[-1])
        g1.append(gp1.dh[-1])
        r = np.full(n_rad, np.nan)
        idx = hist.steps // s.radius_every
        keep = idx < n_rad
        r[idx[keep]] = hist.radius[hist.main][keep]
        radii.append(r)
    T = len(tokens)
    grad_init, grad_final = _pad(g0, T), _pad(g1, T)
    while len(losses) < R:
        losses.append(np.zeros(0))
        radii.append(np.full(n_rad, np.nan))

    def ratio(g):
        with np.errstate(divide="ignore", invalid="ignore"):
            return g[:, 0] / g[:, T - 2] if T >= 2 else np.full(len(g), np.nan)

    return dict(schemes=tuple(s.schemes), steps=np.arange(1, s.steps + 1), loss=_pad(losses, s.steps),
                val_loss=vals, diverged=div, tokens=tokens,
                grad_init=_pad_rows(grad_init, R), grad_final=_pad_rows(grad_final, R),
                ratio_init=_pad_1d(ratio(grad_init), R), ratio_final=_pad_1d(ratio(grad_final), R),
                radius_steps=radius_steps, radius=np.stack(radii))


def _pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    out = np.full((rows, a.shape[1] if a.ndim == 2 else 0), np.nan)
    out[:len(a)] = a
    return out


def _pad_1d(a: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[:len(a)] = a
    return out


# ============================================================================ 3. clipping
@dataclass(frozen=True)
class ClippingSettings:
    cell: str = "rnn"
    hidden: int = 64
    embed: int = 32
    optimizer: str = "sgd"
    lr: float = 6.0  # large on purpose: unclipped, it blows up for seeds 0-2 (5.0 only for seed 0)
    clip: float = 1.0
    steps: int = 300
    seq_len: int = 64
    batch: int = 32
    corpus: str = "grammar"
    spike_factor: float = 10.0  # a spike: grad norm > this x the median of the steps before it
    seed: int = 0
    device: str = "cpu"


def count_spikes(norms: np.ndarray, factor: float = 10.0, warmup: int = 5) -> int:
    """Steps whose gradient norm exceeds `factor` times the median of all earlier steps."""
    g = np.asarray(norms, dtype=np.float64)
    n = 0
    for t in range(warmup, len(g)):
        med = np.median(g[:t])
        if not np.isfinite(g[t]) or g[t] > factor * med:
            n += 1
    return n


@dataclass(frozen=True, eq=False, kw_only=True)
class ClippingResult(ExperimentResult):
    runs: tuple[str, ...]  # ("no clipping", "clip at 1")
    steps: np.ndarray  # [S]
    loss: np.ndarray  # [2, S]
    grad_norm: np.ndarray  # [2, S]: before clipping
    clipped_fraction: np.ndarray  # [2]: steps whose norm was above the clip
    max_grad_norm: np.ndarray  # [2]
    max_grad_step: np.ndarray  # int [2]: the step where the gradient norm peaked
    peak_loss: np.ndarray  # [2]: highest training loss after it
    spikes: np.ndarray  # int [2]
    final_loss: np.ndarray  # [2]: mean training loss of the last 20 steps
    val_loss: np.ndarray  # [2]
    diverged: np.ndarray  # bool [2]: the trainer stopped on a non-finite or overflowing loss
    blew_up: np.ndarray  # bool [2]: diverged, or ended worse than a uniform guess
    uniform_loss: float  # ln(vocabulary size)
    stop_reason: tuple[str, ...]

    def table(self) -> list[str]:
        rows = [f"{'run':<14} {'final loss':>10} {'val':>7} {'max |g|':>9} {'spikes':>6} {'clipped':>8} outcome"]
        for i, name in enumerate(self.runs):
            outcome = "diverged" if self.diverged[i] else ("blew up" if self.blew_up[i] else "fine")
            rows.append(f"{name:<14} {_fmt(self.final_loss[i]):>10} {_fmt(self.val_loss[i]):>7} "
                        f"{self.max_grad_norm[i]:>9.3g} {int(self.spikes[i]):>6} "
                        f"{self.clipped_fraction[i]:>8.0%} {outcome}")
        return rows

    def findings(self) -> list[str]:
        out = []
        for i, name in enumerate(self.runs):
            if not math.isfinite(self.final_loss[i]):
                continue
            out.append(f"{name}: gradient norm peaked at {self.max_grad_norm[i]:.3g} (step {int(self.max_grad_step[i])}), "
                       f"loss peaked at {self.peak_loss[i]:.3g} and ended at {self.final_loss[i]:.3f} nats "
                       f"(a uniform guess: {self.uniform_loss:.2f})")
        if len(self.runs) == 2 and np.isfinite(self.final_loss).all():
            if self.blew_up[0] and not self.blew_up[1]:
                out.append("without clipping the run blew up; clipping kept it learning")
            elif not self.blew_up.any():
                out.append("neither run blew up at this learning rate")
        return out


def run_clipping(s: ClippingSettings, ctx: _Ctx) -> dict:
    corpus = load_corpus(s.corpus, "char", seed=s.seed)
    uniform = math.log(len(corpus.vocab))
    runs = ("no clipping", f"clip at {s.clip:g}")
    L, G, cf, mx, sp, fin, val, div, blew, why = [], [], [], [], [], [], [], [], [], []
    mstep, peak = [], []
    for i, clip in enumerate((None, s.clip)):
        if ctx.stopped:
            break
        cfg = TrainConfig(corpus=s.corpus, cell=s.cell, hidden=s.hidden, embed=s.embed, optimizer=s.optimizer,
                          lr=s.lr, clip=clip, steps=s.steps, seq_len=s.seq_len, batch=s.batch,
                          eval_every=0, eval_batches=4, seed=s.seed, device=s.device)
        tr = ctx.part(i, 2).train(cfg, corpus, runs[i])
        loss, g = _curve(tr), _curve(tr, "grad_norm")
        L.append(loss)
        G.append(g)
        cf.append(float((g > s.clip).mean()) if len(g) else float("nan"))
        mx.append(float(np.nanmax(g)) if len(g) else float("nan"))
        at = int(np.nanargmax(g)) if len(g) else 0
        mstep.append(at + 1)
        peak.append(float(np.nanmax(loss[at:])) if len(loss) else float("nan"))
        sp.append(count_spikes(g, s.spike_factor))
        fin.append(float(np.mean(loss[-20:])) if len(loss) else float("nan"))
        val.append(_final_loss(tr))
        d = tr.result.diverged
        div.append(d)
        blew.append(bool(d or not (fin[-1] < uniform)))
        why.append(tr.result.stopped_reason or "" if d else "")
    n = len(L)
    pad = lambda xs, fill=np.nan: np.asarray(xs + [fill] * (2 - n))  # noqa: E731
    return dict(runs=runs, steps=np.arange(1, s.steps + 1), loss=_pad(L + [np.zeros(0)] * (2 - n), s.steps),
                grad_norm=_pad(G + [np.zeros(0)] * (2 - n), s.steps), clipped_fraction=pad(cf),
                max_grad_norm=pad(mx), max_grad_step=np.asarray(mstep + [0] * (2 - n), dtype=np.int64),
                peak_loss=pad(peak), spikes=np.asarray(sp + [0] * (2 - n), dtype=np.int64),
                final_loss=pad(fin), val_loss=pad(val), diverged=np.asarray(div + [False] * (2 - n)),
                blew_up=np.asarray(blew + [False] * (2 - n)), uniform_loss=uniform,
                stop_reason=tuple(why + [""] * (2 - n)))


# ============================================================================ 4. truncated BPTT
DEFAULT_DISTRACTORS = (0, 2, 4, 6, 8, 10, 12, 15, 18, 21, 24, 27, 30)


@dataclass(frozen=True)
class TbpttSettings:
    cell: str = "lstm"
    hidden: int = 64
    embed: int = 32
    seq_lens: tuple = (8, 32, 128)
    tokens_per_step: int = 1024  # batch = tokens_per_step / seq_len: every run sees the same data
    steps: int = 600
    lr: float = 3e-3
    level: str = "word"
    corpus: str = "balanced"  # or "bundled" (see balanced_agreement_corpus for the difference)
    distractors: tuple = DEFAULT_DISTRACTORS
    pairs: int = 20
    solved_at: float = 0.9
    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True, eq=False, kw_only=True)
class TbpttResult(ExperimentResult):
    seq_lens: np.ndarray  # [R]
    distractors: np.ndarray  # [D]
    accuracy: np.ndarray  # [R, D]
    p_correct: np.ndarray  # [R, D]
    longest_solved: np.ndarray  # int [R]: longest distractor solved at every length up to it
    val_loss: np.ndarray  # [R]
    loss: np.ndarray  # [R, S]
    level: str

    def table(self) -> list[str]:
        rows = ["seq_len  longest solved  val loss  accuracy by distractor " + " ".join(f"{d:>4}" for d in self.distractors)]
        for i, L in enumerate(self.seq_lens):
            rows.append(f"{int(L):>7}  {int(self.longest_solved[i]):>14}  {_fmt(self.val_loss[i]):>8}  "
                        f"{'':>22} " + " ".join(f"{_fmt(a, 2):>4}" for a in self.accuracy[i]))
        return rows

    def findings(self) -> list[str]:
        unit = "words" if self.level == "word" else "characters"
        return [f"seq_len {int(L)} (gradients flow back at most {int(L)} {unit}): accuracy >= "
                f"{self.settings.get('solved_at', 0.9):g} up to {int(n)} distractor words"
                for L, n in zip(self.seq_lens, self.longest_solved)]


def run_tbptt(s: TbpttSettings, ctx: _Ctx) -> dict:
    _choose("level", s.level, ("char", "word"))
    _choose("agreement corpus", s.corpus, ("balanced", "bundled"))
    corpus = agreement_corpus(s.corpus, s.level, s.seed)
    R, D = len(s.seq_lens), len(s.distractors)
    acc, pc = np.full((R, D), np.nan), np.full((R, D), np.nan)
    longest, vals, losses = np.full(R, -1, dtype=np.int64), np.full(R, np.nan), []
    for i, L in enumerate(s.seq_lens):
        if ctx.stopped:
            break
        if not isinstance(L, int) or L < 1:
            raise ConfigError(f"seq_lens must be positive whole numbers, got {L!r}")
        cfg = TrainConfig(corpus="agreement", level=s.level, cell=s.cell, hidden=s.hidden, embed=s.embed,
                          seq_len=L, batch=max(1, s.tokens_per_step // L), steps=s.steps, lr=s.lr,
                          eval_every=0, eval_batches=2, seed=s.seed, device=s.device)
        part = ctx.part(i, R)
        tr = part.span(0, 0.9).train(cfg, corpus, f"seq_len {L}")
        losses.append(_curve(tr))
        vals[i] = _final_loss(tr)
        part.report(0.9, f"seq_len {L}: measuring agreement")
        curve = agreement_curve(_lm(tr), s.distractors, s.pairs, seed=1000 + s.seed, stop=ctx.stop)
        acc[i], pc[i] = curve.accuracy, curve.p_correct
        longest[i] = longest_solved(curve.distractors, curve.accuracy, s.solved_at)
    while len(losses) < R:
        losses.append(np.zeros(0))
    return dict(seq_lens=np.asarray(s.seq_lens, dtype=np.int64), distractors=np.asarray(s.distractors),
                accuracy=acc, p_correct=pc, longest_solved=longest, val_loss=vals,
                loss=_pad(losses, s.steps), level=s.level)


# ============================================================================ 5. zog
@dataclass(frozen=True)
class ZogSettings:
    cell: str = "lstm"
    hidden: int = 64
    embed: int = 32
    steps: int = 500
    seq_len: int = 64
    batch: int = 32
    lr: float = 3e-3
    model: str = ""  # a bundled model (rnn, lstm, gru) or run directory instead of training
    sentences: int = 600  # test sentences with the normal lexicon, for the category centroids
    zog_sentences: int = 300  # test sentences where "zog" stands in every human-noun slot
    novel_word: str = "zog"
    seed: int = 0
    device: str = "cpu"


def _word_states(lm: LoadedModel, text: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(word, state at its last character, state at the last character of the next word)."""
    ids = lm.vocab.encode(text, on_unknown="skip").ids
    if len(ids) != len(text):
        raise ConfigError("the zog experiment needs a character-level model over the toy alphabet")
    with torch.no_grad():
        x = torch.as_tensor(ids, device=lm.model.device)[None]
        out, _ = lm.model.rnn(lm.model.embed(x))
    H = out[0].cpu().numpy().astype(np.float64)
    spans = word_spans(text)
    return [(w, H[e - 1], H[spans[i + 1][1] - 1]) for i, (s, e, w) in enumerate(spans[:-1])]


def _pca2(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, 2 x H projection) of the principal plane, sign fixed so runs compare."""
    mu = points.mean(0)
    _, _, vt = np.linalg.svd(points - mu, full_matrices=False)
    p = vt[:2]
    signs = np.sign(p[np.arange(len(p)), np.abs(p).argmax(1)])
    return mu, p * signs[:, None]


@dataclass(frozen=True, eq=False, kw_only=True)
class ZogResult(ExperimentResult):
    """Two views of every word: "as read" = the hidden state at the word's last character;
    "in context" = the state at the last character of the next word (the word in its use).
    Category centroids average the word types of a category; distances are Euclidean in the
    full hidden space; the 2-D points are the PCA plane of the word-type means of each view."""

    novel_word: str
    words: tuple[str, ...]  # word types, each with its category
    categories: tuple[str, ...]  # category of each word
    category_names: tuple[str, ...]
    points_read: np.ndarray  # [W, 2]
    points_context: np.ndarray  # [W, 2]
    novel_read: np.ndarray  # [2]
    novel_context: np.ndarray  # [2]
    centroids_read: np.ndarray  # [C, 2]
    centroids_context: np.ndarray  # [C, 2]
    distance_read: np.ndarray  # [C]: novel word to each category centroid, full hidden space
    distance_context: np.ndarray  # [C]
    nearest_read: str
    nearest_context: str
    nearest_words_read: tuple[str, ...]  # the five closest word types, as read
    nearest_words_context: tuple[str, ...]
    source: str  # where the model came from

    def table(self) -> list[str]:
        rows = [f"{'category':<12} {'dist as read':>12} {'in context':>11}"]
        order = np.argsort(self.distance_context)
        for j in order:
            rows.append(f"{self.category_names[j]:<12} {self.distance_read[j]:>12.3f} {self.distance_context[j]:>11.3f}")
        return rows

    def findings(self) -> list[str]:
        z = self.novel_word
        return [f"in context, {z!r} is nearest to {self.nearest_context} "
                f"(closest words: {', '.join(self.nearest_words_context[:3])})",
                f"as read (its own letters only), {z!r} is nearest to {self.nearest_read} "
                f"(closest words: {', '.join(self.nearest_words_read[:3])})",
                f"model: {self.source}"]


def run_zog(s: ZogSettings, ctx: _Ctx) -> dict:
    word = s.novel_word.strip().lower()
    if not word.isalpha() or not set(word) <= set(TOY_ALPHABET):
        raise ConfigError(f"the novel word must be lowercase letters a-z, got {s.novel_word!r}")
    known = grammar_categories()
    if word in known:
        raise ConfigError(f"{word!r} is already a grammar word ({known[word]}): pick an unseen one")
    if s.model:
        from .checkpoint import load_model

        lm = load_model(s.model, device="cpu")
        source = lm.meta.get("source") or s.model
    else:
        corpus = load_corpus("grammar", "char", seed=s.seed)
        cfg = TrainConfig(corpus="grammar", cell=s.cell, hidden=s.hidden, embed=s.embed, steps=s.steps,
                          seq_len=s.seq_len, batch=s.batch, lr=s.lr, eval_every=0, eval_batches=2,
                          seed=s.seed, device=s.device)
        tr = ctx.span(0, 0.85).train(cfg, corpus, "grammar")
        lm = _lm(tr)
        source = f"{s.cell} H={s.hidden} trained {tr.step} steps on grammar (val loss {_final_loss(tr):.3f})"
    if lm.vocab.level != "char":
        raise ConfigError("the zog experiment needs a character-level model")
    ctx.report(0.9, "zog: reading test sentences")
    # Test sentences only: the model never trains on the novel word.
    text = " ".join(grammar_sentences(s.sentences, seed=s.seed + 101))
    lexicon = dict(GRAMMAR_LEXICON)
    lexicon["NOUN_HUMAN"] = (word,)
    ztext = " ".join(grammar_sentences(s.zog_sentences, seed=s.seed + 202, lexicon=lexicon))
    read: dict[str, list] = {}
    used: dict[str, list] = {}
    for w, a, b in _word_states(lm, text):
        read.setdefault(w, []).append(a)
        used.setdefault(w, []).append(b)
    z_read = [a for w, a, _ in _word_states(lm, ztext) if w == word]
    z_used = [b for w, _, b in _word_states(lm, ztext) if w == word]
    words = tuple(w for w in sorted(read) if w in known)
    cats = tuple(known[w] for w in words)
    names = tuple(c for c in GRAMMAR_LEXICON if c in set(cats))
    out: dict[str, Any] = dict(novel_word=word, words=words, categories=cats, category_names=names, source=source)
    for view, table, zs in (("read", read, z_read), ("context", used, z_used)):
        means = np.stack([np.mean(table[w], 0) for w in words])
        zmean = np.mean(zs, 0)
        cent = np.stack([means[[i for i, c in enumerate(cats) if c == n]].mean(0) for n in names])
        dist = np.linalg.norm(cent - zmean, axis=1)
        wdist = np.linalg.norm(means - zmean, axis=1)
        mu, p = _pca2(means)
        out[f"points_{view}"] = (means - mu) @ p.T
        out[f"novel_{view}"] = (zmean - mu) @ p.T
        out[f"centroids_{view}"] = (cent - mu) @ p.T
        out[f"distance_{view}"] = dist
        out[f"nearest_{view}"] = names[int(np.argmin(dist))]
        out[f"nearest_words_{view}"] = tuple(words[i] for i in np.argsort(wdist)[:5])
    ctx.report(1.0, "zog: done")
    return out


# ============================================================================ 6. temperature
@dataclass(frozen=True)
class TemperatureSettings:
    model: str = "lstm"  # a bundled model (rnn, lstm, gru) or a run directory
    prime: str = "the "
    temperatures: tuple = (0.2, 0.8, 1.5)
    length: int = 300
    seed: int = 0


def _template_patterns() -> list[list[set[str]]]:
    """Each grammar template as a list of allowed words per position."""
    pats = []
    for _, template in GRAMMAR_TEMPLATES:
        slots = []
        for slot in template.split():
            if slot.isupper():
                slots.append({w for c in slot.split("|") for w in GRAMMAR_LEXICON[c]})
            else:
                slots.append(set(slot.split("|")))
        pats.append(slots)
    return pats


def grammatical(sentence_words: list[str], patterns=None) -> bool:
    """Whether a word sequence is exactly one of the toy grammar's templates."""
    patterns = _template_patterns() if patterns is None else patterns
    return any(len(p) == len(sentence_words) and all(w in slot for w, slot in zip(sentence_words, p))
               for p in patterns)


def text_statistics(text: str, lexicon: set[str] | None, grammar: bool) -> dict[str, float]:
    """Word counts and quality measures of a generated text (NaN where they do not apply)."""
    import re

    words = re.findall(r"[a-z]+", text.lower())
    n = len(words)
    nan = float("nan")
    stats = {"words": float(n),
             "in_lexicon": (sum(w in lexicon for w in words) / n if n else nan) if lexicon else nan,
             "distinct": len(set(words)) / n if n else nan,
             "repeats": (sum(a == b for a, b in zip(words, words[1:])) / (n - 1)) if n > 1 else nan}
    if grammar:
        # Complete sentences only: the text between two full stops.
        parts = text.split(".")
        complete = [re.findall(r"[a-z]+", p.lower()) for p in parts[1:-1]]
        complete = [c for c in complete if c]
        pats = _template_patterns()
        stats["sentences"] = float(len(complete))
        stats["grammatical"] = (sum(grammatical(c, pats) for c in complete) / len(complete)) if complete else nan
    else:
        stats["sentences"] = nan
        stats["grammatical"] = nan
    return stats


STAT_NAMES = ("words", "in_lexicon", "distinct", "repeats", "sentences", "grammatical")


@dataclass(frozen=True, eq=False, kw_only=True)
class TemperatureResult(ExperimentResult):
    prime: str
    temperatures: np.ndarray  # [K]
    texts: tuple[str, ...]  # [K] generated continuations
    stats: dict[str, np.ndarray]  # name -> [K]; see STAT_NAMES
    model_label: str

    def table(self) -> list[str]:
        rows = [f"{'T':>4} {'in lexicon':>10} {'distinct':>8} {'repeats':>7} {'grammatical':>11}  sample"]
        for k, t in enumerate(self.temperatures):
            st = {n: self.stats[n][k] for n in STAT_NAMES}
            sample = (self.prime + self.texts[k]).replace("\n", " ")[:60]
            rows.append(f"{t:>4.1f} {_fmt(st['in_lexicon'], 2):>10} {_fmt(st['distinct'], 2):>8} "
                        f"{_fmt(st['repeats'], 2):>7} {_fmt(st['grammatical'], 2):>11}  {sample}")
        return rows

    def findings(self) -> list[str]:
        out = [f"model: {self.model_label}"]
        labels = {"distinct": "distinct-word ratio", "in_lexicon": "words in the lexicon",
                  "grammatical": "grammatical sentences"}
        for key, label in labels.items():
            v = self.stats[key]
            if np.isfinite(v).any():
                out.append(f"{label}: " + ", ".join(f"{_fmt(x, 2)} at T={t:g}" for t, x in zip(self.temperatures, v)))
        return out


def run_temperature(s: TemperatureSettings, ctx: _Ctx) -> dict:
    from .checkpoint import load_model
    from .sampling import sample

    lm = load_model(s.model, device="cpu")
    cats = lm.categories
    lexicon = set(cats) if cats else None
    grammar = lm.meta.get("corpus") == "grammar"
    texts, stats = [], {n: np.full(len(s.temperatures), np.nan) for n in STAT_NAMES}
    for k, t in enumerate(s.temperatures):
        if ctx.stopped:
            texts.append("")
            continue
        ctx.report(k / len(s.temperatures), f"sampling at T={t}")
        res = sample(lm, s.prime, temperature=float(t), length=s.length, seed=s.seed, stop=ctx.stop)
        texts.append(res.text)
        for n, v in text_statistics(s.prime + res.text, lexicon, grammar).items():
            stats[n][k] = v
    return dict(prime=s.prime, temperatures=np.asarray(s.temperatures, dtype=np.float64), texts=tuple(texts),
                stats=stats, model_label=lm.label)


# ============================================================================ 7. agreement
@dataclass(frozen=True)
class AgreementSettings:
    cells: tuple = ("rnn", "lstm", "gru")
    hidden: int = 64
    embed: int = 32
    steps: int = 600  # the same budget for every cell
    seq_len: int = 32
    batch: int = 32
    lr: float = 3e-3
    level: str = "word"
    corpus: str = "balanced"  # or "bundled"
    distractors: tuple = DEFAULT_DISTRACTORS
    pairs: int = 20
    param_sizes: tuple = (32, 64, 128, 256)
    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True, eq=False, kw_only=True)
class AgreementResult(ExperimentResult):
    cells: tuple[str, ...]
    distractors: np.ndarray  # [D]
    p_correct: np.ndarray  # [C, D]
    accuracy: np.ndarray  # [C, D]
    accuracy_incongruent: np.ndarray  # [C, D]
    accuracy_congruent: np.ndarray  # [C, D]
    val_loss: np.ndarray  # [C]
    loss: np.ndarray  # [C, S]
    parameters: np.ndarray  # int [C]: whole model at the chosen size
    param_sizes: np.ndarray  # [P]
    recurrent_parameters: np.ndarray  # int [C, P]: one recurrent layer with input = hidden
    level: str
    corpus: str

    def table(self) -> list[str]:
        rows = [f"{'cell':<5} {'params':>7} {'val':>6}  accuracy by distractor "
                + " ".join(f"{d:>4}" for d in self.distractors)]
        for i, c in enumerate(self.cells):
            rows.append(f"{c:<5} {int(self.parameters[i]):>7} {_fmt(self.val_loss[i]):>6}  {'':>22} "
                        + " ".join(f"{_fmt(a, 2):>4}" for a in self.accuracy[i]))
        rows.append("recurrent parameters, one layer (input = hidden): "
                    + "; ".join(f"H={int(h)}: " + ", ".join(f"{c} {int(self.recurrent_parameters[i, j])}"
                                                           for i, c in enumerate(self.cells))
                                for j, h in enumerate(self.param_sizes)))
        return rows

    def findings(self) -> list[str]:
        far = self.distractors >= 15
        out = []
        if far.any():
            for i, c in enumerate(self.cells):
                if np.isfinite(self.accuracy[i, far]).any():
                    out.append(f"{c}: mean accuracy {_nanmean(self.accuracy[i, far]):.2f} at distractor length "
                               f">= 15 (p(right verb) {_nanmean(self.p_correct[i, far]):.2f})")
        return out


@dataclass(frozen=True, eq=False)
class AgreementModels:
    """The cells trained on one agreement corpus with one budget, and what each learned.

    Cells the stop flag cut off before their first step are absent from every dict but
    `parameters`; `steps` says how far each of the others got.
    """

    models: dict  # cell -> LoadedModel (a CPU snapshot)
    curves: dict  # cell -> AgreementCurve
    loss: dict  # cell -> float64 [steps done]: training loss per step
    val_loss: dict  # cell -> float (NaN when there was no validation)
    steps: dict  # cell -> int
    parameters: dict  # cell -> int: the whole model at the chosen size, for every cell


def train_agreement_models(s: AgreementSettings, stop: threading.Event | None = None,
                           progress: Progress | None = None) -> AgreementModels:
    """Train every cell of `s.cells` on the same agreement corpus and measure agreement.

    Shared by the `agreement` experiment and the Compare screen (which keeps the models)."""
    return _train_agreement(s, _Ctx(stop, progress))


def _train_agreement(s: AgreementSettings, ctx: _Ctx) -> AgreementModels:
    _choose("level", s.level, ("char", "word"))
    _choose("agreement corpus", s.corpus, ("balanced", "bundled"))
    for c in s.cells:
        _choose("cell", c, CELLS)
    corpus = agreement_corpus(s.corpus, s.level, s.seed)
    out = AgreementModels({}, {}, {}, {}, {}, {})
    for i, cell in enumerate(s.cells):
        cfg = TrainConfig(corpus="agreement", level=s.level, cell=cell, hidden=s.hidden, embed=s.embed,
                          seq_len=s.seq_len, batch=s.batch, steps=s.steps, lr=s.lr, eval_every=0,
                          eval_batches=2, seed=s.seed, device=s.device)
        out.parameters[cell] = cfg.model_config(len(corpus.vocab)).parameter_count()
        if ctx.stopped:
            continue
        part = ctx.part(i, len(s.cells))
        tr = part.span(0, 0.9).train(cfg, corpus, cell)
        if tr.step == 0:  # stopped before its first step: nothing to measure
            continue
        out.loss[cell], out.val_loss[cell], out.steps[cell] = _curve(tr), _final_loss(tr), tr.step
        out.models[cell] = lm = _lm(tr)
        part.report(0.9, f"{cell}: measuring agreement")
        out.curves[cell] = agreement_curve(lm, s.distractors, s.pairs, seed=1000 + s.seed, stop=ctx.stop)
    return out


def run_agreement(s: AgreementSettings, ctx: _Ctx) -> dict:
    trained = _train_agreement(s, ctx)
    C, D = len(s.cells), len(s.distractors)
    res = {k: np.full((C, D), np.nan) for k in ("p_correct", "accuracy", "accuracy_incongruent", "accuracy_congruent")}
    for i, cell in enumerate(s.cells):
        curve = trained.curves.get(cell)
        if curve is not None:  # None: stopped before this cell trained (its row stays NaN)
            for k in res:
                res[k][i] = getattr(curve, k)
    vals = np.array([trained.val_loss.get(c, np.nan) for c in s.cells], dtype=np.float64)
    losses = [trained.loss.get(c, np.zeros(0)) for c in s.cells]
    params = np.array([trained.parameters[c] for c in s.cells], dtype=np.int64)
    sizes = np.asarray(s.param_sizes, dtype=np.int64)
    rec = np.array([[recurrent_parameters(c, int(h), int(h)) for h in sizes] for c in s.cells], dtype=np.int64)
    return dict(cells=tuple(s.cells), distractors=np.asarray(s.distractors), val_loss=vals,
                loss=_pad(losses, s.steps), parameters=params, param_sizes=sizes, recurrent_parameters=rec,
                level=s.level, corpus=s.corpus, **res)


# ============================================================================ 8. memory horizon
@dataclass(frozen=True)
class MemorySettings:
    models: tuple = (("rnn", 32), ("rnn", 64), ("rnn", 128), ("lstm", 64), ("gru", 64))
    embed: int = 32
    steps: int = 400  # the same budget for every model
    seq_len: int = 64
    batch: int = 32
    lr: float = 3e-3
    corpus: str = "grammar"
    max_lag: int = 40
    contexts: int = 128
    threshold: float = 0.02  # mean total variation that still counts as "changes the prediction"
    perturb: str = "random"
    seed: int = 0
    device: str = "cpu"


@dataclass(frozen=True, eq=False, kw_only=True)
class MemoryResult(ExperimentResult):
    labels: tuple[str, ...]  # "rnn H=64", ...
    cells: tuple[str, ...]
    hidden: np.ndarray  # [M]
    lags: np.ndarray  # [K]
    tv: np.ndarray  # [M, K]: mean total variation between next-token distributions
    tv_sem: np.ndarray  # [M, K]
    kl: np.ndarray  # [M, K]
    horizon: np.ndarray  # int [M]: lags (tokens back) that still move the prediction by >= threshold
    threshold: float
    val_loss: np.ndarray  # [M]
    parameters: np.ndarray  # int [M]

    def table(self) -> list[str]:
        shown = [k for k in (1, 2, 5, 10, 15, 20, 30, 40) if k <= len(self.lags)]
        rows = [f"{'model':<10} {'params':>7} {'val':>6} {'horizon':>7}  TV at lag " + " ".join(f"{k:>6}" for k in shown)]
        for i, lab in enumerate(self.labels):
            rows.append(f"{lab:<10} {int(self.parameters[i]):>7} {_fmt(self.val_loss[i]):>6} {int(self.horizon[i]):>7}  "
                        f"{'':>9} " + " ".join(f"{self.tv[i, k - 1]:>6.3f}" for k in shown))
        return rows

    def findings(self) -> list[str]:
        out = [f"horizon = how many tokens back a replaced token still moves the next-token "
               f"distribution by total variation >= {self.threshold:g} (mean over contexts)"]
        rnn = [(int(h), int(n)) for c, h, n in zip(self.cells, self.hidden, self.horizon) if c == "rnn"]
        rnn.sort()
        for (h1, n1), (h2, n2) in zip(rnn, rnn[1:]):
            out.append(f"vanilla RNN H={h1} -> H={h2}: horizon {n1} -> {n2} ({n2 - n1:+d} tokens)")
        base = {int(h): int(n) for c, h, n in zip(self.cells, self.hidden, self.horizon) if c == "rnn"}
        for c, h, n in zip(self.cells, self.hidden, self.horizon):
            if c != "rnn" and int(h) in base:
                out.append(f"{c} H={int(h)}: horizon {int(n)} vs {base[int(h)]} for the vanilla RNN of that size")
        return out


def run_memory(s: MemorySettings, ctx: _Ctx) -> dict:
    _choose("perturbation", s.perturb, dynamics.PERTURBATIONS)
    models = []
    for m in s.models:
        if not (isinstance(m, tuple) and len(m) == 2 and m[0] in CELLS and isinstance(m[1], int) and m[1] > 0):
            raise ConfigError(f"each model must be (cell, hidden) like ('rnn', 64), got {m!r}")
        models.append(m)
    corpus = load_corpus(s.corpus, "char", seed=s.seed)
    ctxs = dynamics.context_windows(corpus.val, s.contexts, s.max_lag + 1, seed=s.seed)
    pool = np.unique(corpus.train)  # replacements are tokens the model has seen in training
    M, K = len(models), s.max_lag
    tv, sem, kl = np.full((M, K), np.nan), np.full((M, K), np.nan), np.full((M, K), np.nan)
    hor, vals, params = np.zeros(M, dtype=np.int64), np.full(M, np.nan), np.zeros(M, dtype=np.int64)
    for i, (cell, hidden) in enumerate(models):
        cfg = TrainConfig(corpus=s.corpus, cell=cell, hidden=hidden, embed=s.embed, steps=s.steps,
                          seq_len=s.seq_len, batch=s.batch, lr=s.lr, eval_every=0, eval_batches=4,
                          seed=s.seed, device=s.device)
        params[i] = cfg.model_config(len(corpus.vocab)).parameter_count()
        if ctx.stopped:
            continue
        part = ctx.part(i, M)
        tr = part.span(0, 0.9).train(cfg, corpus, f"{cell} H={hidden}")
        vals[i] = _final_loss(tr)
        part.report(0.9, f"{cell} H={hidden}: perturbing")
        curve = dynamics.memory_horizon(_lm(tr), ctxs, s.max_lag, s.threshold, s.perturb, tokens=pool,
                                        seed=s.seed, stop=ctx.stop)
        tv[i], sem[i], kl[i], hor[i] = curve.tv, curve.tv_sem, curve.kl, curve.horizon
    return dict(labels=tuple(f"{c} H={h}" for c, h in models), cells=tuple(c for c, _ in models),
                hidden=np.asarray([h for _, h in models]), lags=np.arange(1, K + 1), tv=tv, tv_sem=sem, kl=kl,
                horizon=hor, threshold=float(s.threshold), val_loss=vals, parameters=params)


# ============================================================================ 9. spectral
@dataclass(frozen=True)
class SpectralSettings:
    radii: tuple = (0.5, 0.9, 1.0, 1.1, 1.5)
    hidden: int = 64
    steps: int = 60  # iterations of the free recurrence
    start_norm: float = 1.0
    text: str = PROBE_TEXT[:66]  # read by a vanilla RNN rescaled to each radius, for dL/dh_t
    seed: int = 0


@dataclass(frozen=True, eq=False, kw_only=True)
class SpectralResult(ExperimentResult):
    radii: np.ndarray  # [R]
    norm_tanh: np.ndarray  # [R, steps + 1]: ||h_t|| for h <- tanh(rho W h)
    norm_linear: np.ndarray  # [R, steps + 1]: ||h_t|| for h <- rho W h
    rate_tanh: np.ndarray  # [R]: mean d ln||h|| / dt (finite-time Lyapunov exponent)
    rate_linear: np.ndarray  # [R]: ~ ln(rho)
    eigenvalues: np.ndarray  # complex [H]: of W at radius 1 (scale by rho for the others)
    tokens: tuple[str, ...]
    grad: np.ndarray  # [R, T]: ||dL/dh_t|| of a vanilla RNN whose W_hh has radius rho
    grad_ratio: np.ndarray  # [R]: first / last position

    def table(self) -> list[str]:
        s = self.norm_tanh.shape[1] - 1
        rows = [f"{'rho':>4} {'|h_' + str(s) + '| tanh':>12} {'|h_' + str(s) + '| linear':>14} "
                f"{'rate tanh':>9} {'rate lin':>8} {'|g1|/|gT|':>10}"]
        for i, r in enumerate(self.radii):
            rows.append(f"{r:>4.1f} {self.norm_tanh[i, -1]:>12.3e} {self.norm_linear[i, -1]:>14.3e} "
                        f"{self.rate_tanh[i]:>9.3f} {self.rate_linear[i]:>8.3f} {self.grad_ratio[i]:>10.2e}")
        return rows

    def findings(self) -> list[str]:
        out = []
        for i, r in enumerate(self.radii):
            h0, h, lin = self.norm_tanh[i, 0], self.norm_tanh[i, -1], self.norm_linear[i, -1]
            if not (math.isfinite(h) and math.isfinite(h0)):
                continue
            if h < 0.01 * h0:
                kind = f"decays to {h:.1e}"
            elif h < h0:
                kind = f"fades slowly to {h:.2f}"
            else:
                kind = f"grows until tanh saturates, |h| = {h:.2f}"
            out.append(f"rho={r:g}: free tanh state {kind}; linear map |h| -> {lin:.2e} "
                       f"({self.rate_linear[i]:+.3f}/step, ln rho = {math.log(r):+.3f})")
        g = self.grad_ratio
        if np.isfinite(g).all() and len(g) > 1:
            out.append(f"gradient reaching the first token: {g[0]:.1e} of the last one's at rho={self.radii[0]:g}, "
                       f"{g[-1]:.1e} at rho={self.radii[-1]:g}")
        return out


def run_spectral(s: SpectralSettings, ctx: _Ctx) -> dict:
    R = len(s.radii)
    for r in s.radii:
        if not isinstance(r, (int, float)) or not 0 < r < 100:
            raise ConfigError(f"each radius must be in (0, 100), got {r!r}")
    w = dynamics.random_recurrent(s.hidden, s.seed)
    h0 = dynamics.start_state(s.hidden, s.start_norm, s.seed)
    nt, nl = np.full((R, s.steps + 1), np.nan), np.full((R, s.steps + 1), np.nan)
    vocab = Vocab(tokens=tuple(TOY_ALPHABET), level="char")
    text = "".join(ch for ch in s.text.lower() if ch in TOY_ALPHABET)
    if len(text) < 2:
        raise ConfigError("the spectral experiment's text needs at least 2 letters")
    grads = []
    tokens: tuple[str, ...] = ()
    for i, r in enumerate(s.radii):
        if ctx.stopped:
            break
        ctx.report(i / R, f"rho={r}")
        nt[i] = dynamics.recurrence_alone(w, r, s.steps, "tanh", start=h0)
        nl[i] = dynamics.recurrence_alone(w, r, s.steps, "linear", start=h0)
        model = build_model(ModelConfig(vocab_size=len(vocab), cell="rnn", embed=32, hidden=s.hidden), seed=s.seed)
        with torch.no_grad():  # the same W for every radius: only its scale changes
            model.rnn.weight_hh_l0.copy_(torch.as_tensor(w, dtype=torch.float32))
        set_spectral_radius(model, float(r))
        gp = gradient_profile(LoadedModel(model=model.eval(), vocab=vocab), text, dtype=torch.float64)
        grads.append(gp.dh[-1])
        tokens = gp.tokens
    g = _pad_rows(_pad(grads, len(tokens)), R) if grads else np.full((R, len(text)), np.nan)
    T = g.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = g[:, 0] / g[:, T - 2]
    ctx.report(1.0, "spectral: done")
    ev = np.linalg.eigvals(w)
    return dict(radii=np.asarray(s.radii, dtype=np.float64), norm_tanh=nt, norm_linear=nl,
                rate_tanh=np.array([dynamics.growth_rate(n) for n in nt]),
                rate_linear=np.array([dynamics.growth_rate(n) for n in nl]),
                eigenvalues=ev[np.argsort(-np.abs(ev), kind="stable")], tokens=tokens, grad=g, grad_ratio=ratio)


# ============================================================================ registry
@dataclass(frozen=True)
class Experiment:
    name: str
    explanation: tuple[str, str]  # two lines for lists and headers
    settings_type: type
    result_type: type
    quick: dict  # overrides for a smoke run
    _runner: Callable[[Any, _Ctx], dict]

    def settings(self, overrides: dict | None = None, quick: bool = False):
        """Default settings (or the quick ones), with `overrides` (a dict, e.g. from JSON)."""
        base = self.settings_type()
        values = dict(self.quick) if quick else {}
        values.update(overrides or {})
        known = {f.name: f for f in fields(self.settings_type)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"experiment {self.name!r} has no setting {', '.join(unknown)}: "
                              f"it has {', '.join(known)}")
        values = {k: _coerce(v, getattr(base, k)) for k, v in values.items()}
        s = replace(base, **values)
        _check_settings(s)
        return s

    def run(self, settings=None, stop: threading.Event | None = None, progress: Progress | None = None,
            *, threads: int | None = 1):
        """Run headless and return the frozen result (see the module doc)."""
        if settings is None:
            settings = self.settings()
        elif isinstance(settings, dict):
            settings = self.settings(settings)
        elif not isinstance(settings, self.settings_type):
            raise ConfigError(f"experiment {self.name!r} takes {self.settings_type.__name__}, "
                              f"got {type(settings).__name__}")
        else:
            _check_settings(settings)
        ctx = _Ctx(stop, progress)
        t0 = time.perf_counter()
        with _Threads(threads):
            data = self._runner(settings, ctx)
        return self.result_type(experiment=self.name, settings=asdict(settings),
                                seconds=time.perf_counter() - t0, stopped=ctx.stopped, **data)


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (
    Experiment("parity", ("Temporal XOR: a 2-unit vanilla RNN learns the running parity of a bit stream.",
                          "Its 2-D hidden state splits into an 'even' and an 'odd' region."),
               ParitySettings, ParityResult, dict(starts=32, screen_steps=200, steps=200), run_parity),
    Experiment("init-schemes", ("Default, orthogonal, Xavier, identity+ReLU (IRNN) and frozen echo-state "
                                "recurrent matrices on the same task.",
                                "Loss curves, spectral radius while training and gradient by timestep, together."),
               InitSettings, InitResult, dict(steps=60, hidden=32, radius_every=20), run_init_schemes),
    Experiment("clipping", ("Plain SGD with a large learning rate on a vanilla RNN, with and without "
                            "gradient-norm clipping.",
                            "Without it the gradient norm spikes and the loss blows up; with it training goes on."),
               ClippingSettings, ClippingResult, dict(steps=80), run_clipping),
    Experiment("tbptt", ("One LSTM trained with truncated BPTT windows of 8, 32 and 128 tokens, same data.",
                         "Agreement accuracy by distractor length: the longest dependency each window lets it learn."),
               TbpttSettings, TbpttResult, dict(steps=150, distractors=(0, 4, 8, 12), pairs=8, seq_lens=(8, 32)),
               run_tbptt),
    Experiment("zog", ("Train on the toy grammar, then read sentences where the unseen word 'zog' fills "
                       "every human-noun slot.",
                       "Word states -> PCA; which category centroid is zog nearest to, as read and in context?"),
               ZogSettings, ZogResult, dict(steps=150, sentences=200, zog_sentences=100), run_zog),
    Experiment("temperature", ("The same prime sampled at T = 0.2, 0.8 and 1.5, side by side.",
                               "Per temperature: words in the lexicon, distinct words, repeats, grammatical sentences."),
               TemperatureSettings, TemperatureResult, dict(length=120), run_temperature),
    Experiment("agreement", ("Vanilla RNN, LSTM and GRU trained on subject-verb agreement with the same budget.",
                             "P(right verb: was/were) and accuracy against distractor length 0..30; parameters per cell."),
               AgreementSettings, AgreementResult,
               dict(steps=150, distractors=(0, 4, 8, 15), pairs=8, cells=("rnn", "lstm")), run_agreement),
    Experiment("memory-horizon", ("Replace the token k steps back and measure how much the next-token "
                                  "distribution moves (total variation).",
                                  "The memory horizon per cell and hidden size: doubling H buys the vanilla RNN little."),
               MemorySettings, MemoryResult,
               dict(steps=100, models=(("rnn", 32), ("lstm", 32)), max_lag=20, contexts=32), run_memory),
    Experiment("spectral", ("Recurrence alone: h <- tanh(W h) and h <- W h with W rescaled to spectral radius "
                            "0.5, 0.9, 1.0, 1.1, 1.5.",
                            "Decay, the edge of chaos and explosion; plus gradient norm by timestep at each radius."),
               SpectralSettings, SpectralResult, dict(steps=30, hidden=32), run_spectral),
)}


def get_experiment(name: str) -> Experiment:
    key = str(name).strip().lower()
    if key not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}: choose one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[key]


def run_experiment(name: str, settings: dict | None = None, *, quick: bool = False,
                   stop: threading.Event | None = None, progress: Progress | None = None):
    """get_experiment(name).run(...) with dict settings layered over the defaults (or quick ones)."""
    exp = get_experiment(name)
    return exp.run(exp.settings(settings, quick=quick), stop=stop, progress=progress)


__all__ = ["EXPERIMENTS", "Experiment", "ExperimentResult", "get_experiment", "run_experiment",
           "agreement_corpus", "agreement_curve", "AgreementModels", "train_agreement_models", "AgreementCurve", "balanced_agreement_corpus", "flip_subject", "flip_number",
           "continuation_logprobs", "longest_solved", "recurrent_parameters", "count_spikes",
           "text_statistics", "grammatical"]
