"""Sampling: determinism, greedy decoding against an independent loop, settings, stop."""

import json
import threading

import pytest
import torch

from rnn_tui.engine.corpus import Vocab
from rnn_tui.engine.errors import ConfigError, VocabError
from rnn_tui.engine.model import LoadedModel, ModelConfig, build_model
from rnn_tui.engine.sampling import sample, sample_stream

CORPUS = "the cat sat on the mat. a dog ran to the cat, and the cat ran off."
VOCAB = Vocab.build(CORPUS, "char")


def make(cell="lstm", layers=2, vocab=VOCAB, seed=0, **kw) -> LoadedModel:
    cfg = ModelConfig(vocab_size=len(vocab), cell=cell, embed=6, hidden=12, layers=layers, **kw)
    return LoadedModel(build_model(cfg, seed=seed), vocab)


def greedy_reference(lm, prime_ids: list[int], length: int) -> list[int]:
    """Argmax decoding that re-reads the whole sequence every step (no carried state)."""
    ids = list(prime_ids)
    out = []
    with torch.no_grad():
        for _ in range(length):
            logits, _ = lm.model(torch.tensor([ids]))
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            ids.append(nxt)
    return out


def test_same_seed_same_text_and_different_seeds_differ():
    lm = make()
    a = sample(lm, "the ", length=60, seed=7)
    b = sample(lm, "the ", length=60, seed=7)
    c = sample(lm, "the ", length=60, seed=8)
    assert a.text == b.text and len(a.text) == 60 and a.tokens == 60
    assert a.text != c.text
    assert set(a.text) <= set(VOCAB.tokens)
    assert a.settings == {"temperature": 1.0, "top_k": 0, "length": 60, "seed": 7, "greedy": False}
    assert a.tokens_per_s > 0 and not a.stopped and a.seed_used == 7
    fresh = sample(lm, "the ", length=60)  # a random seed, recorded so the text can be made again
    assert fresh.settings["seed"] is None and sample(lm, "the ", length=60, seed=fresh.seed_used).text == fresh.text
    json.dumps(a.to_json())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_greedy_equals_independent_argmax(cell):
    lm = make(cell)
    expected = VOCAB.decode(greedy_reference(lm, list(VOCAB.encode("the c").ids), 25))
    assert sample(lm, "the c", length=25, greedy=True).text == expected
    assert sample(lm, "the c", length=25, greedy=True, seed=1).text == expected
    assert sample(lm, "the c", length=25, temperature=0).text == expected
    assert sample(lm, "the c", length=25, top_k=1, seed=3).text == expected
    # A vanishing temperature is greedy too: no inf - inf on the way.
    assert sample(lm, "the c", length=25, temperature=1e-30, seed=3).text == expected


def test_top_k_at_or_above_vocab_is_off():
    lm = make("gru")
    off = sample(lm, "a ", length=40, seed=5).text
    assert sample(lm, "a ", length=40, seed=5, top_k=len(VOCAB)).text == off
    assert sample(lm, "a ", length=40, seed=5, top_k=10_000).text == off
    few = sample(lm, "a ", length=200, seed=5, top_k=2, temperature=5.0).text
    assert len(set(few)) < len(set(sample(lm, "a ", length=200, seed=5, temperature=5.0).text))


def test_empty_prime_starts_from_a_space():
    lm = make()
    assert " " in VOCAB.tokens
    empty = sample(lm, "", length=20, greedy=True).text
    assert empty == sample(lm, " ", length=20, greedy=True).text
    assert empty == VOCAB.decode(greedy_reference(lm, [VOCAB.stoi[" "]], 20))


def test_stop_event_ends_the_stream():
    lm = make()
    stop = threading.Event()
    stream = sample_stream(lm, "the", length=1000, seed=0, stop=stop)
    pieces = []
    for piece in stream:
        pieces.append(piece)
        if len(pieces) == 5:
            stop.set()
    assert len(pieces) == 5 and stream.stopped and stream.count == 5
    preset = threading.Event()
    preset.set()
    res = sample(lm, "the", length=50, stop=preset)
    assert res.text == "" and res.stopped and res.tokens == 0


@pytest.mark.parametrize("kwargs,match", [
    ({"temperature": -1.0}, r"temperature must be > 0 \(or use greedy\)"),
    ({"temperature": float("nan")}, "temperature must be > 0"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"temperature": 1e9}, "at most"),
    ({"top_k": -1}, "top-k must be >= 0"),
    ({"top_k": 1.5}, "top-k must be >= 0"),
    ({"length": 0}, "length must be between 1 and 100000"),
    ({"length": 100_001}, "length must be between 1 and 100000"),
    ({"seed": "x"}, "seed must be a whole number"),
])
def test_bad_settings_raise_config_error_at_once(kwargs, match):
    lm = make("rnn", layers=1)
    with pytest.raises(ConfigError, match=match):
        sample_stream(lm, "the", **kwargs)  # raised on the call, not on the first next()
    with pytest.raises(ConfigError, match=match):
        sample(lm, "the", **kwargs)


def test_greedy_ignores_temperature():
    lm = make("rnn", layers=1)
    assert sample(lm, "the", length=5, greedy=True, temperature=-3).tokens == 5


def test_unknown_prime_characters_are_skipped_with_a_message():
    lm = make()
    res = sample(lm, "thQe c#", length=30, seed=2)
    assert res.unknown_message is not None and "'Q'" in res.unknown_message and "skipped" in res.unknown_message
    assert res.text == sample(lm, "the c", length=30, seed=2).text
    assert sample(lm, "the c", length=3, seed=2).unknown_message is None
    stream = sample_stream(lm, "QQ", length=3, greedy=True)
    assert stream.unknown_message is not None
    assert "".join(stream) == sample(lm, "", length=3, greedy=True).text  # nothing left: start token
    with pytest.raises(VocabError):
        sample(lm, "thQe", on_unknown="error")


def test_word_level_pieces_are_spaced():
    words = Vocab.build("the cat sat on the mat . a dog ran to the cat .", "word")
    lm = make("gru", vocab=words)
    pieces = list(sample_stream(lm, "", length=6, seed=1))
    assert len(pieces) == 6 and not pieces[0].startswith(" ")
    assert all(p.startswith(" ") and p[1:] in words.tokens for p in pieces[1:])
    after = list(sample_stream(lm, "the cat", length=3, seed=1))
    assert all(p.startswith(" ") for p in after)
    after_space = list(sample_stream(lm, "the cat ", length=3, seed=1))
    assert not after_space[0].startswith(" ") and after_space[1].startswith(" ")


def test_training_mode_dropout_does_not_leak_into_samples():
    lm = make("lstm", layers=2, dropout=0.5)
    lm.model.train()
    text = sample(lm, "the ", length=30, greedy=True).text
    assert lm.model.training  # sampling did not flip the mode
    lm.model.eval()
    assert text == sample(lm, "the ", length=30, greedy=True).text
    double = LoadedModel(lm.model.double().train(), VOCAB)  # the step-wise prime path in float64
    assert sample(double, "the ", length=30, greedy=True).text == text


def test_long_prime_goes_in_chunks():
    lm = make("gru", layers=1)
    prime = (CORPUS * 200)[:9000]  # more than one 4096-token chunk
    expected = VOCAB.decode(greedy_reference(lm, list(VOCAB.encode(prime).ids), 2))
    assert sample(lm, prime, length=2, greedy=True).text == expected
