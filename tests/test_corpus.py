"""Tests for rnn_tui.engine.corpus: vocabularies, file loading, bundled corpora, batching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_tui.engine.corpus import (
    BUNDLED_CORPORA,
    GRAMMAR_LEXICON,
    AgreementItem,
    BatchStream,
    Vocab,
    agreement_items,
    grammar_sentences,
    load_corpus,
    word_spans,
)
from rnn_tui.engine.errors import ConfigError, CorpusError, VocabError

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
DEFAULT_SENTENCE = "the cat that we saw yesterday was happy"


# ---------------------------------------------------------------------------- vocab / encode


def test_char_round_trip():
    text = "Hello, wörld!\nÅ tab\there 🙂"
    vocab = Vocab.build(text, "char")
    assert vocab.tokens == tuple(sorted(set(text)))
    enc = vocab.encode(text)
    assert enc.ids.dtype == np.int64
    assert enc.handling == "none" and enc.unknown == () and enc.message() is None
    twice = Vocab(tokens=tuple("the "), level="char").encode("QQ the", on_unknown="skip")
    assert twice.unknown == ("Q",) and len(twice.ids) == 4
    assert twice.message() == "1 character not in the model's vocabulary ('Q') was skipped (2 in all)"
    assert "".join(enc.tokens) == text
    assert vocab.decode(enc.ids) == text
    assert vocab.decode(torch.from_numpy(enc.ids)) == text
    assert vocab.decode([]) == ""


def test_word_round_trip_and_unk():
    text = "the cat sat. the dog sat, the cat ran!"
    vocab = Vocab.build(text, "word")
    assert vocab.unk == "<unk>" and "<unk>" in vocab.tokens
    assert vocab.split("the cat sat.") == ["the", "cat", "sat", "."]
    enc = vocab.encode("the dog sat.")
    assert vocab.decode(enc.ids) == "the dog sat ."
    # the most frequent word gets the first id after <unk>
    assert vocab.tokens[1] == "the"
    small = Vocab.build(text, "word", max_words=2)
    assert len(small) == 3
    # "cat" and "sat" tie on count: the first to appear wins, so the vocab is deterministic
    assert small.tokens == ("<unk>", "the", "cat")
    enc = small.encode("the zebra cat sat zebra", on_unknown="unk")
    assert enc.tokens == ("the", "<unk>", "cat", "<unk>", "<unk>")
    assert enc.unknown == ("zebra", "sat")
    assert enc.message() == "2 words not in the model's vocabulary ('zebra', 'sat') were mapped to <unk> (3 in all)"
    one = small.encode("the dog", on_unknown="skip")
    assert one.message() == "1 word not in the model's vocabulary ('dog') was skipped"


def test_vocab_dict_round_trip():
    for vocab in (Vocab.build("abc cab", "char"), Vocab.build("a b. c", "word")):
        data = json.loads(json.dumps(vocab.to_dict()))
        again = Vocab.from_dict(data)
        assert again == vocab
        assert again.stoi == vocab.stoi
    with pytest.raises(VocabError):
        Vocab.from_dict({"level": "char"})
    with pytest.raises(VocabError, match="duplicate"):
        Vocab(tokens=("a", "a"), level="char")
    with pytest.raises(ConfigError):
        Vocab(tokens=("a",), level="byte")


def test_unknown_chars_each_policy():
    vocab = Vocab.build("hello world", "char")
    text = "hello Qworld!Q"
    with pytest.raises(VocabError) as info:
        vocab.encode(text)
    msg = str(info.value)
    assert "2 characters not in the model's vocabulary" in msg and "'Q', '!'" in msg

    skipped = vocab.encode(text, on_unknown="skip")
    assert vocab.decode(skipped.ids) == "hello world"
    assert skipped.unknown == ("Q", "!")
    assert skipped.handling == "skipped (3 in all)"
    assert skipped.message() == "2 characters not in the model's vocabulary ('Q', '!') were skipped (3 in all)"

    # no unk token in a char vocab: "unk" falls back to skipping
    fallback = vocab.encode(text, on_unknown="unk")
    assert fallback.handling == "skipped (3 in all)"
    np.testing.assert_array_equal(fallback.ids, skipped.ids)

    with_unk = Vocab(tokens=(*vocab.tokens, "?"), level="char", unk="?")
    mapped = with_unk.encode(text, on_unknown="unk")
    assert with_unk.decode(mapped.ids) == "hello ?world??"
    assert mapped.message() == "2 characters not in the model's vocabulary ('Q', '!') were mapped to ? (3 in all)"

    with pytest.raises(ConfigError):
        vocab.encode(text, on_unknown="ignore")


def test_unknown_message_caps_listing():
    vocab = Vocab.build("a", "char")
    with pytest.raises(VocabError) as info:
        vocab.encode("bcdefghijklm")
    msg = str(info.value)
    assert msg.startswith("the text has 12 characters")
    assert "'i'" in msg and "'j'" not in msg and "and 4 more" in msg


def test_word_spans():
    text = "the cat, that we saw."
    assert word_spans(text) == [(0, 3, "the"), (4, 7, "cat"), (9, 13, "that"), (14, 16, "we"), (17, 20, "saw")]
    for start, end, word in word_spans(text):
        assert text[start:end] == word


# ---------------------------------------------------------------------------- files


def _write(tmp_path: Path, data: bytes, name: str = "c.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_file_corpus_split(tmp_path):
    text = "abcdefghij" * 10
    path = _write(tmp_path, text.encode())
    corpus = load_corpus(str(path), val_fraction=0.1)
    assert corpus.name == "c.txt" and corpus.level == "char"
    assert len(corpus.train) == 90 and len(corpus.val) == 10
    assert corpus.vocab.decode(np.concatenate([corpus.train, corpus.val])) == text
    assert corpus.train_targets is None and corpus.categories is None
    # CRLF line ends and a BOM are not part of the text
    crlf = load_corpus(str(_write(tmp_path, b"\xef\xbb\xbfab\r\ncd\r\n", "w.txt")))
    assert "\r" not in crlf.vocab.tokens and "\ufeff" not in crlf.vocab.tokens


@pytest.mark.parametrize(
    "data, pattern",
    [
        (b"", r"c\.txt is empty"),
        (b"  \n\t \n", r"c\.txt contains only whitespace"),
        (b"abc\x00\x01def", r"c\.txt looks like a binary file \(NUL byte at byte offset 3\)"),
        ("héllo".encode() + b"ab\xffcd", r"c\.txt is not UTF-8 text: byte 0xff at byte offset 8"),
        (b"a", r"too short: 1 token"),
    ],
)
def test_bad_files(tmp_path, data, pattern):
    path = _write(tmp_path, data)
    with pytest.raises(CorpusError, match=pattern):
        load_corpus(str(path))


def test_missing_and_directory(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(CorpusError, match=r"no such file: .*nope\.txt"):
        load_corpus(str(missing))
    with pytest.raises(CorpusError, match=r"'gramar' is not a bundled corpus \(grammar, parity, agreement\) and no such file"):
        load_corpus("gramar")
    with pytest.raises(CorpusError, match=r"is a directory"):
        load_corpus(str(tmp_path))
    with pytest.raises(ConfigError):
        load_corpus("grammar", level="byte")
    with pytest.raises(ConfigError):
        load_corpus("grammar", val_fraction=1.5)


def test_tinyshakespeare_if_present():
    if not SHAKESPEARE.is_file():
        pytest.skip(f"{SHAKESPEARE} is not present")
    corpus = load_corpus(str(SHAKESPEARE))
    assert len(corpus.vocab) == 65
    piece = corpus.vocab.decode(corpus.train[:500])
    assert piece.startswith("First Citizen:")
    np.testing.assert_array_equal(corpus.vocab.encode(piece).ids, corpus.train[:500])


# ---------------------------------------------------------------------------- grammar


def test_grammar_deterministic_and_small_alphabet():
    a = load_corpus("grammar", seed=1, size=500)
    b = load_corpus("grammar", seed=1, size=500)
    c = load_corpus("grammar", seed=2, size=500)
    np.testing.assert_array_equal(a.train, b.train)
    assert a.train.shape != c.train.shape or not np.array_equal(a.train, c.train)
    assert len(a.vocab) <= 30
    assert set(a.vocab.tokens) <= set(" .abcdefghijklmnopqrstuvwxyz")
    text = a.vocab.decode(np.concatenate([a.train, a.val]))
    assert text.endswith(".") and "  " not in text
    for word in text.replace(".", " ").split():
        assert a.categories[word] in GRAMMAR_LEXICON


def test_grammar_default_sentence_and_lexicon():
    corpus = load_corpus("grammar", size=200)
    for _, _, word in word_spans(DEFAULT_SENTENCE):
        assert word in corpus.categories
    assert corpus.categories["cat"] == "NOUN_ANIMAL" and corpus.categories["girl"] == "NOUN_HUMAN"
    n_words = sum(len(w) for w in GRAMMAR_LEXICON.values())
    assert 45 <= n_words <= 60  # Elman's few dozen words, and the plural subjects
    sentences = grammar_sentences(2000, seed=0)
    assert all(s.endswith(".") for s in sentences)
    # the default sentence's shape is one the grammar produces, and its plural twin's
    assert any(s.startswith("the ") and " that we " in s and s.endswith(" was happy.") for s in sentences)
    assert any(s.startswith("the cats that ") and s.endswith(" were happy.") for s in sentences)
    # a swapped lexicon reuses the templates: an unseen noun stands where human nouns stood
    zog = dict(GRAMMAR_LEXICON, NOUN_HUMAN=("zog",))
    zogged = " ".join(grammar_sentences(300, seed=0, lexicon=zog))
    assert "zog" in zogged and not any(f" {w} " in zogged for w in GRAMMAR_LEXICON["NOUN_HUMAN"])
    assert corpus.vocab.encode("the zog sleeps.").handling == "none"


def test_grammar_agreement_is_a_real_test():
    """Singular subjects take 'was', plural ones 'were', equally often; the clause's own nouns
    and pronouns take either number, so the word before the verb is no clue to it."""
    from rnn_tui.engine.agreement_text import find_agreement, is_plural

    slots = [(s, find_agreement(s)) for s in grammar_sentences(4000, seed=3)]
    slots = [(s, a) for s, a in slots if a is not None and a.verb_written is not None]
    assert all(a.agrees for _, a in slots)  # the grammar itself always agrees
    plural = [a.plural for _, a in slots]
    assert 0.4 < sum(plural) / len(plural) < 0.6
    clause = [(s, a) for s, a in slots if " that " in s]
    assert len(clause) > 800
    # the last noun or pronoun before the verb: its number matches the subject's about half the time
    same = []
    for s, a in clause:
        words = s[a.subject_end:a.verb_start].split()
        numbered = [w for w in words if is_plural(w) is not None or w in ("he", "she", "we", "they")]
        if numbered:
            last = numbered[-1]
            last_plural = is_plural(last) if is_plural(last) is not None else last in ("we", "they")
            same.append(last_plural == a.plural)
    assert len(same) > 500 and 0.35 < sum(same) / len(same) < 0.65


def test_grammar_word_level():
    corpus = load_corpus("grammar", level="word", size=300)
    assert corpus.level == "word" and corpus.vocab.unk == "<unk>"
    assert "." in corpus.vocab.tokens and "the" in corpus.vocab.tokens


# ---------------------------------------------------------------------------- parity


def test_parity_targets_are_running_parity():
    corpus = load_corpus("parity", size=300, seed=3)
    assert corpus.vocab.tokens == (".", "0", "1")
    ids = np.concatenate([corpus.train, corpus.val])
    targets = np.concatenate([corpus.train_targets, corpus.val_targets])
    stream = corpus.vocab.decode(ids)
    assert stream.startswith(".")
    expected = []
    parity = 0
    for ch in stream:
        if ch == ".":
            parity = 0
            expected.append(".")
        else:
            parity ^= int(ch)
            expected.append(str(parity))
    assert corpus.vocab.decode(targets) == "".join(expected)
    lengths = [len(s) for s in stream.split(".")[1:]]
    assert min(lengths) >= 2 and max(lengths) <= 16
    with pytest.raises(ConfigError):
        load_corpus("parity", level="word")


# ---------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("distractor", [0, 1, 2, 3, 4, 5, 12, 20])
def test_agreement_items(distractor):
    items = agreement_items(distractor, 20, seed=distractor)
    assert len(items) == 20 and any(i.plural for i in items) and not all(i.plural for i in items)
    for item in items:
        assert isinstance(item, AgreementItem)
        assert item.text.startswith(item.prefix + item.correct + " ") and item.text.endswith(".")
        assert item.prefix.endswith(" ")
        assert {item.correct, item.wrong} == {"was", "were"}
        words = item.prefix.split()
        assert item.distractor_words == distractor
        # "the SUBJECT [that + n words]"
        assert len(words) == 2 + (distractor + 1 if distractor else 0)
        subject = words[1]
        plural = subject.endswith("s") or subject in ("men", "women", "mice")
        assert plural == item.plural
        assert item.correct == ("were" if plural else "was")
    assert agreement_items(distractor, 5, seed=1) == agreement_items(distractor, 5, seed=1)


def test_agreement_corpus():
    corpus = load_corpus("agreement", size=400, seed=0)
    text = corpus.vocab.decode(np.concatenate([corpus.train, corpus.val]))
    sentences = [s for s in text.split(".") if s.strip()]
    assert len(sentences) == 400
    assert len(corpus.vocab) <= 30
    for s in sentences:
        words = s.split()
        assert words[-2] in ("was", "were")
        assert corpus.categories[words[-2]] in ("VERB_SG", "VERB_PL")
        assert all(w in corpus.categories for w in words)
    assert corpus.categories["cats"] == "NOUN_PL" and corpus.categories["cat"] == "NOUN_SG"


def test_agreement_clause_nouns_say_nothing_about_the_verb():
    """No shortcut: the last noun before the verb agrees with it about half the time."""
    corpus = load_corpus("agreement", size=3000, seed=1)
    text = corpus.vocab.decode(np.concatenate([corpus.train, corpus.val]))
    cats = corpus.categories
    agree = total = 0
    for s in text.split("."):
        words = s.split()
        if "that" not in words or len(words) < 4:
            continue
        clause = words[words.index("that") + 1 : -2]
        numbered = [w for w in clause if cats.get(w, "").endswith(("_SG", "_PL"))]
        if numbered:
            total += 1
            agree += cats[numbered[-1]][-2:] == cats[words[-2]][-2:]
    assert total > 1000 and 0.45 < agree / total < 0.55


def test_bundled_names():
    assert BUNDLED_CORPORA == ("grammar", "parity", "agreement")


# ---------------------------------------------------------------------------- batches


def test_batch_stream_rows_are_contiguous():
    ids = np.arange(1000, dtype=np.int64)
    stream = BatchStream(ids, None, batch=4, seq_len=7)
    assert stream.windows_per_epoch == (250 - 1) // 7
    prev = None
    for k in range(stream.windows_per_epoch):
        x, y = stream.next()
        assert x.shape == (4, 7) and x.dtype == torch.long and y.dtype == torch.long
        assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y, x + 1)
        assert torch.equal(x[:, 0], torch.arange(4) * 250 + k * 7)
        if prev is not None:
            assert torch.equal(prev[:, -1] + 1, x[:, 0])
        prev = x
    assert stream.epoch == 1 and stream.progress == 1.0 and stream.at_row_start
    x, _ = stream.next()
    assert torch.equal(x[:, 0], torch.arange(4) * 250)
    assert 1.0 < stream.progress < 2.0
    stream.reset()
    assert stream.epoch == 0 and stream.progress == 0.0


def test_batch_stream_with_targets():
    ids = np.arange(100, dtype=np.int64)
    targets = ids * 10
    stream = BatchStream(ids, targets, batch=2, seq_len=5)
    assert stream.windows_per_epoch == 10
    x, y = stream.next()
    assert torch.equal(y, x * 10)
    assert torch.equal(x[1], torch.arange(50, 55))


def test_batch_stream_too_short():
    with pytest.raises(CorpusError) as info:
        BatchStream(np.zeros(100, dtype=np.int64), None, batch=32, seq_len=64, name="tiny")
    assert str(info.value) == (
        "corpus 'tiny' has 100 training tokens; one batch of 32 x 64 needs at least 2080: "
        "use a smaller --batch or --seq-len, or a longer text"
    )
    # exactly enough is fine
    BatchStream(np.zeros(2080, dtype=np.int64), None, batch=32, seq_len=64).next()
