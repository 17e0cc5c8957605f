"""Sampling text from a model, one token at a time.

`sample_stream` validates its settings at once (ConfigError) and returns an iterator of
decoded pieces: a character at char level; at word level a word with a leading space,
except for the very first word when there is nothing before it (empty prime, or a prime
that already ends in whitespace), so `prime + "".join(pieces)` reads as text.

The prime runs through the fused model once and its final state is carried; each sampled
token then goes through `cell_step` (same parameters, much cheaper per token). With an empty
prime (or one whose tokens were all unknown and skipped) the model starts from a zero state
and is fed a neutral start token: " " if the vocabulary has it, else ".", else token 0.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from .errors import CheckpointError, ConfigError

MAX_LENGTH = 100_000
MAX_TEMPERATURE = 100.0
START_TOKENS = (" ", ".")
# Long primes go through the fused model in chunks so memory stays bounded.
PRIME_CHUNK = 4096


def _check_settings(temperature, top_k, length, seed, greedy) -> tuple[float, int, int, int | None, bool]:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise ConfigError(f"temperature must be a number, got {temperature!r}")
    temperature = float(temperature)
    greedy = bool(greedy)
    if not greedy:
        if math.isnan(temperature) or temperature < 0:
            raise ConfigError("temperature must be > 0 (or use greedy)")
        if temperature == 0:
            greedy = True  # the limit of temperature -> 0 is the argmax
        elif temperature > MAX_TEMPERATURE:
            raise ConfigError(f"temperature must be at most {MAX_TEMPERATURE:g}, got {temperature:g}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise ConfigError(f"top-k must be >= 0 (0 = off), got {top_k!r}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or not 1 <= length <= MAX_LENGTH:
        raise ConfigError(f"length must be between 1 and {MAX_LENGTH}, got {length!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ConfigError(f"seed must be a whole number (or None for a random one), got {seed!r}")
    return temperature, int(top_k), int(length), None if seed is None else int(seed), greedy


@torch.no_grad()
def _advance(model, ids: np.ndarray, state):
    """Feed ids [T] through the model from `state`: (logits of the last step [V], new state)."""
    # Dropout between fused layers is live in train mode, and the model may be training in
    # another thread, so rather than flip it to eval use the dropout-free step-wise path.
    fused = not (model.training and model.rnn.dropout > 0)
    last = None
    for s in range(0, len(ids), PRIME_CHUNK):
        chunk = torch.as_tensor(ids[s:s + PRIME_CHUNK], device=model.device).unsqueeze(0)
        if fused:
            out, state = model.rnn(model.embed(chunk), state)
            last = out[0, -1]
        else:
            if state is None:  # init_state makes float32 whatever the model's dtype
                state = model.init_state(1)
                dtype = model.head.weight.dtype
                state = tuple(t.to(dtype) for t in state) if isinstance(state, tuple) else state.to(dtype)
            step = model.stepwise(chunk, state)
            state, last = step.state, step.hidden[-1][-1][0]
    return model.head(last), state


@torch.no_grad()
def _step(model, token: int, state):
    """One token through the same parameters in plain tensor code (`cell_step`, no dropout).

    On a CPU a fused LSTM call costs milliseconds of oneDNN set-up however short its input,
    ~30x the arithmetic of one step, so after the prime the tokens go one by one through this.
    """
    x = model.embed.weight[token].unsqueeze(0)  # [1, E]
    lstm = model.config.cell == "lstm"
    hs, cs = [], []
    for k in range(model.config.layers):
        if lstm:
            h, c = model.cell_step(k, x, (state[0][k], state[1][k]))
            cs.append(c)
        else:
            h = model.cell_step(k, x, state[k])
        hs.append(h)
        x = h
    state = (torch.stack(hs), torch.stack(cs)) if lstm else torch.stack(hs)
    return model.head(x)[0], state


@torch.no_grad()
def _pick(logits: torch.Tensor, temperature: float, top_k: int, greedy: bool, gen: torch.Generator) -> int:
    if not bool(torch.isfinite(logits).all()):
        raise CheckpointError("the model's outputs are NaN or infinite: its weights have diverged "
                              "(load an earlier checkpoint)")
    if greedy:
        return int(logits.argmax())
    idx = None
    if 0 < top_k < logits.numel():
        logits, idx = logits.topk(top_k)
    # Subtract the max before dividing: tiny temperatures give -inf, never inf - inf.
    z = (logits.double() - logits.max().double()) / temperature
    choice = torch.multinomial(torch.softmax(z, dim=-1), 1, generator=gen)
    return int(idx[choice]) if idx is not None else int(choice)


class SampleStream:
    """Iterator of decoded pieces. `unknown_message` says what happened to unknown prime tokens;
    `count` and `seconds` say how many tokens came out and how long that took."""

    def __init__(self, lm, ids: np.ndarray, prime: str, settings: dict, stop, unknown_message):
        self.unknown_message: str | None = unknown_message
        self.settings = settings
        self.count = 0
        self.seconds = 0.0
        self.stopped = False
        self.seed_used: int | None = None  # the generator's seed, also when `seed` was None
        self._gen = self._run(lm, ids, prime, stop)

    def __iter__(self) -> "SampleStream":
        return self

    def __next__(self) -> str:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()

    def _run(self, lm, ids: np.ndarray, prime: str, stop: threading.Event | None) -> Iterator[str]:
        s = self.settings
        model, vocab = lm.model, lm.vocab
        gen = torch.Generator(device=model.device)
        if s["seed"] is None:
            gen.seed()
        else:
            gen.manual_seed(s["seed"])
        self.seed_used = gen.initial_seed()
        # `seconds` counts only time spent in here, not while the consumer holds a piece.
        start = time.perf_counter()
        if len(ids) == 0:
            stoi = {t: i for i, t in enumerate(vocab.tokens)}
            first = next((stoi[t] for t in START_TOKENS if t in stoi), 0)
            ids = np.array([first], dtype=np.int64)
        logits, state = _advance(model, ids, None)
        word = vocab.level == "word"
        # A word gets a space before it unless it starts the text or the prime already ends in one.
        space = word and bool(prime) and not prime[-1].isspace()
        # Subword pieces: what the tokenizer's decoder makes of each, after the ones before it.
        context = [int(i) for i in ids[-8:]] if vocab.level == "bpe" and len(prime) else []
        for n in range(s["length"]):
            if stop is not None and stop.is_set():
                self.stopped = True
                return
            token = _pick(logits, s["temperature"], s["top_k"], s["greedy"], gen)
            piece = vocab.tokens[token]
            if vocab.level == "bpe":
                piece = vocab.piece_text(context, token)
                context = [*context[-7:], token]
            elif word:
                piece = (" " + piece) if space else piece
                space = True
            self.count += 1
            self.seconds += time.perf_counter() - start
            yield piece
            start = time.perf_counter()
            if n + 1 < s["length"]:
                if stop is not None and stop.is_set():
                    self.stopped = True
                    return
                logits, state = _step(model, token, state)


def sample_stream(lm, prime: str = "", temperature: float = 1.0, top_k: int = 0, length: int = 200,
                  seed: int | None = None, greedy: bool = False, stop: threading.Event | None = None,
                  on_unknown: str = "skip") -> SampleStream:
    """Yield `length` sampled pieces after `prime` (see the module doc).

    temperature 0 means greedy; top_k 0 (or >= the vocabulary size) means no top-k cut;
    seed None draws a fresh random seed. Stops early once `stop` is set.
    """
    temperature, top_k, length, seed, greedy = _check_settings(temperature, top_k, length, seed, greedy)
    if not isinstance(prime, str):
        raise ConfigError(f"the prime must be text, got {type(prime).__name__}")
    enc = lm.vocab.encode(prime, on_unknown=on_unknown)  # raises VocabError for on_unknown="error"
    settings = {"temperature": temperature, "top_k": top_k, "length": length, "seed": seed, "greedy": greedy}
    return SampleStream(lm, np.asarray(enc.ids, dtype=np.int64), prime, settings, stop, enc.message())


@dataclass(frozen=True)
class SampleResult:
    prime: str
    text: str  # the generated continuation only: prime + text is the whole passage
    settings: dict = field(default_factory=dict)  # temperature, top_k, length, seed, greedy
    tokens: int = 0  # how many tokens were generated
    tokens_per_s: float = 0.0
    stopped: bool = False  # ended early because `stop` was set
    unknown_message: str | None = None
    seed_used: int | None = None  # the generator's seed (drawn at random when seed was None)

    def to_json(self) -> dict:
        return {"prime": self.prime, "text": self.text, "settings": dict(self.settings),
                "tokens": self.tokens, "tokens_per_s": round(self.tokens_per_s, 1),
                "stopped": self.stopped, "unknown_message": self.unknown_message,
                "seed_used": self.seed_used}


def sample(lm, prime: str = "", temperature: float = 1.0, top_k: int = 0, length: int = 200,
           seed: int | None = None, greedy: bool = False, stop: threading.Event | None = None,
           on_unknown: str = "skip") -> SampleResult:
    """`sample_stream` collected into one result."""
    stream = sample_stream(lm, prime, temperature=temperature, top_k=top_k, length=length, seed=seed,
                           greedy=greedy, stop=stop, on_unknown=on_unknown)
    text = "".join(stream)
    rate = stream.count / stream.seconds if stream.seconds > 0 else 0.0
    return SampleResult(prime=prime, text=text, settings=dict(stream.settings), tokens=stream.count,
                        tokens_per_s=rate, stopped=stream.stopped, unknown_message=stream.unknown_message,
                        seed_used=stream.seed_used)
