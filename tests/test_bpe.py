"""Subword tokens: a BPE tokenizer (Hugging Face `tokenizers`, the optional extra) trained on a
corpus or given as tokenizer.json; a BPE run trains, saves its tokenizer, samples and traces;
RunWriter and `rnn-tui import` take a tokenizer; hostile tokenizer files are refused."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("tokenizers")

from rnn_tui.engine.corpus import Vocab, load_corpus  # noqa: E402
from rnn_tui.engine.corpus import subword  # noqa: E402
from rnn_tui.engine.errors import ConfigError, VocabError  # noqa: E402

TEXT = ("the cat that we saw was happy. the cats that we saw were happy.\n"
        "the dog runs. the dogs run. a girl reads the book.\n") * 40


@pytest.fixture(scope="module")
def vocab():
    return Vocab.build(TEXT, "bpe", bpe_vocab=80)


def test_training_is_deterministic_and_decoding_gives_the_text_back(vocab):
    again = Vocab.build(TEXT, "bpe", bpe_vocab=80)
    assert again == vocab and again.tokenizer == vocab.tokenizer
    assert 30 < len(vocab) <= 80
    assert vocab.tokens[0] == "<unk>" and vocab.unk == "<unk>"
    text = "the cats that we saw were happy.\nthe dog runs."
    enc = vocab.encode(text)
    assert vocab.decode(enc.ids) == text
    # Pieces as the tokenizer writes them: "▁" marks the space before a word, a line break is its own.
    assert "▁cats" in enc.tokens and "\n" in enc.tokens
    assert enc.tokens[0].startswith("▁")  # a text's first word reads as it does mid-sentence
    assert vocab.encode("the").tokens == vocab.encode("x the", "skip").tokens[-1:]


def test_characters_the_tokenizer_lacks_are_named_skipped_or_mapped(vocab):
    with pytest.raises(VocabError, match=r"1 character not in the model's vocabulary \('Q'\)"):
        vocab.encode("the Q cat")
    skipped = vocab.encode("the Q cat", on_unknown="skip")
    assert "<unk>" not in skipped.tokens and "skipped" in skipped.message()
    mapped = vocab.encode("the Q cat", on_unknown="unk")
    assert "<unk>" in mapped.tokens and "mapped to <unk>" in mapped.message()
    assert vocab.tail("the cat that we saw", 2).strip() == "we saw"


def test_the_vocabulary_travels_as_json_and_a_tampered_one_is_refused(vocab):
    data = json.loads(json.dumps(vocab.to_dict()))
    assert Vocab.from_dict(data) == vocab
    swapped = dict(data, tokens=[data["tokens"][1], data["tokens"][0], *data["tokens"][2:]])
    with pytest.raises(VocabError, match="not its tokenizer's pieces"):
        Vocab.from_dict(swapped)
    with pytest.raises(VocabError, match="tokenizers library"):
        Vocab.from_dict(dict(data, tokenizer='{"model": 3}'))
    with pytest.raises(VocabError, match="needs its tokenizer"):
        Vocab(tokens=vocab.tokens, level="bpe")


def test_a_file_corpus_is_read_a_chunk_at_a_time_and_decodes_exactly(tmp_path, monkeypatch):
    import rnn_tui.engine.corpus.stream as stream

    monkeypatch.setattr(stream, "CHUNK_BYTES", 512)  # many chunk boundaries
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    corpus = load_corpus(str(path), "bpe", bpe_vocab=100)
    ids = np.concatenate([corpus.train, corpus.val])
    assert corpus.vocab.decode(ids) == TEXT
    assert "subword pieces" in corpus.description and corpus.source["bytes"] == len(TEXT)
    capped = load_corpus(str(path), "bpe", bpe_vocab=100, size=50)
    assert len(capped.train) + len(capped.val) == 50
    # The same text in the tokenizer a model already has: the model's vocabulary, not a new one.
    again = load_corpus(str(path), "bpe", vocab=corpus.vocab)
    assert again.vocab is corpus.vocab and np.array_equal(again.train, corpus.train)


def test_a_bpe_encoding_is_cached_by_its_tokenizer(tmp_path, monkeypatch):
    import rnn_tui.engine.corpus.subword as subword

    path = tmp_path / "text.txt"
    path.write_text(TEXT * 3, encoding="utf-8")
    cache = tmp_path / "cache"
    first = load_corpus(str(path), "bpe", bpe_vocab=100, cache_dir=cache)
    given = Vocab.build(TEXT, "bpe", bpe_vocab=60)
    assert len(list(cache.glob("*.npy"))) == 1 and "not cached" not in first.description

    def no_training(*args, **kwargs):
        raise AssertionError("a cache hit trained a tokenizer")

    monkeypatch.setattr(subword, "train_bpe", no_training)
    hit = load_corpus(str(path), "bpe", bpe_vocab=100, cache_dir=cache)
    assert hit.vocab == first.vocab and np.array_equal(hit.train, first.train)
    assert not hit.train.flags.writeable  # served from the memory map
    assert hit.vocab.decode(np.concatenate([hit.train, hit.val])) == TEXT * 3
    # The same text in a given tokenizer is its own entry, and a hit after that.
    mine = load_corpus(str(path), "bpe", vocab=given, cache_dir=cache)
    assert mine.vocab.tokenizer == given.tokenizer and len(list(cache.glob("*.npy"))) == 2
    assert np.array_equal(load_corpus(str(path), "bpe", vocab=given, cache_dir=cache).train, mine.train)
    # Another size is another tokenizer: not served from the entry of 100 (it would train one).
    with pytest.raises(AssertionError, match="trained a tokenizer"):
        load_corpus(str(path), "bpe", bpe_vocab=90, cache_dir=cache)
    # A sidecar whose tokenizer was tampered with is a miss, never a wrong vocabulary.
    monkeypatch.undo()
    sidecar = next(p for p in cache.glob("*.json") if '"train:100' in p.read_text())
    meta = json.loads(sidecar.read_text())
    tampered = meta["vocab"]["tokenizer"].replace('"▁the"', '"▁teh"')
    assert tampered != meta["vocab"]["tokenizer"]
    meta["vocab"]["tokenizer"] = tampered
    sidecar.write_text(json.dumps(meta))
    again = load_corpus(str(path), "bpe", bpe_vocab=100, cache_dir=cache)
    assert again.vocab == first.vocab


def test_a_hostile_tokenizer_file_gets_a_clear_message(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no such tokenizer file"):
        subword.read_tokenizer_file(tmp_path / "missing.json")
    binary = tmp_path / "bin.json"
    binary.write_bytes(os.urandom(2000))
    with pytest.raises(ConfigError, match="not a tokenizer.json"):
        subword.read_tokenizer_file(binary)
    junk = tmp_path / "junk.json"
    junk.write_text('{"version": "1.0", "model": {"type": "Nope"}}')
    with pytest.raises(ConfigError, match="tokenizers library reads"):
        subword.read_tokenizer_file(junk)
    with pytest.raises(ConfigError, match="not a regular file"):
        subword.read_tokenizer_file(tmp_path)
    big = tmp_path / "big.json"
    big.write_text(" " * 5000)
    monkeypatch.setattr(subword, "MAX_TOKENIZER_BYTES", 4096)
    with pytest.raises(ConfigError, match="larger than"):
        subword.read_tokenizer_file(big)


def test_a_bpe_run_trains_saves_its_tokenizer_samples_and_traces(tmp_path, capsys):
    from rnn_tui.cli import main
    from rnn_tui.engine.checkpoint import load_model
    from rnn_tui.engine.probes import trace, verb_agreement
    from rnn_tui.engine.sampling import sample

    run = tmp_path / "run"
    assert main(["train", "agreement", "--level", "bpe", "--bpe-vocab", "120", "--steps", "40", "--hidden", "24",
                 "--embed", "16", "--seq-len", "24", "--batch", "8", "--eval-every", "20", "--out", str(run)]) == 0
    capsys.readouterr()
    lm = load_model(run)
    assert lm.vocab.level == "bpe" and len(lm.vocab) <= 120
    saved = (run / "tokenizer.json").read_text(encoding="utf-8")
    assert saved == lm.vocab.tokenizer
    assert Vocab.from_tokenizer(run / "tokenizer.json") == lm.vocab
    assert 'bpe_vocab = 120' in (run / "train.toml").read_text()
    # Sampling prints text (the decoder's spaces), not pieces.
    out = sample(lm, prime="the cat", length=30, seed=3)
    assert "▁" not in out.text and out.tokens == 30
    assert lm.vocab.decode(lm.vocab.encode("the cat" + out.text, "unk").ids).startswith("the cat")
    # A trace steps through the pieces as the tokenizer writes them.
    tr = trace(lm, "the cats that we saw were happy")
    head = tuple(lm.vocab.encode("the cats").tokens)
    assert tr.tokens[:len(head)] == head and head[0] == "▁the"
    assert tr.hidden.shape[1] == len(tr.tokens)
    # The agreement slot is found in pieces: the verb piece holds its "▁".
    va = verb_agreement(lm, "the cats that we saw were happy")
    assert va is not None and va.correct == "were"
    assert lm.vocab.tokens[lm.vocab.encode("the cats that we saw were").ids[va.verb_position]].endswith("were")
    assert 0.0 < va.p_were < 1.0
    # --resume goes on with the run's own tokenizer.
    assert main(["train", "--resume", str(run), "--steps", "50"]) == 0
    assert load_model(run).vocab == lm.vocab
    assert main(["sample", str(run), "--length", "10", "--seed", "1"]) == 0
    assert "▁" not in capsys.readouterr().out


def test_a_given_tokenizer_is_used_as_it_is_and_means_level_bpe(tmp_path, capsys, vocab):
    from rnn_tui.cli import main
    from rnn_tui.engine.checkpoint import load_model

    tok = tmp_path / "tokenizer.json"
    tok.write_text(vocab.tokenizer, encoding="utf-8")
    run = tmp_path / "run"
    small = ["--steps", "5", "--hidden", "8", "--embed", "8", "--batch", "4", "--seq-len", "16"]
    assert main(["train", "grammar", "--level", "bpe", "--tokenizer", str(tok), *small, "--out", str(run)]) == 0
    assert load_model(run).vocab == vocab
    assert "--bpe-vocab" not in capsys.readouterr().err
    # --tokenizer alone: subword pieces; --bpe-vocab beside it is said to do nothing.
    assert main(["train", "grammar", "--tokenizer", str(tok), "--bpe-vocab", "500", *small,
                 "--out", str(tmp_path / "r2")]) == 0
    assert load_model(tmp_path / "r2").vocab == vocab
    assert "with --tokenizer the file's own pieces are used" in capsys.readouterr().err
    # A level that is not bpe, said outright, is still refused.
    assert main(["train", "grammar", "--level", "char", "--tokenizer", str(tok), *small,
                 "--out", str(tmp_path / "r3")]) != 0
    assert "goes with --level bpe" in capsys.readouterr().err
    assert main(["train", "grammar", "--bpe-vocab", "500", *small, "--out", str(tmp_path / "r4")]) == 0
    assert "with --level char it does nothing" in capsys.readouterr().err
    # A --config file holds every setting: only what the command line gives is warned about.
    assert main(["train", "--config", str(tmp_path / "r4" / "train.toml"), "--out", str(tmp_path / "r5")]) == 0
    assert "--bpe-vocab" not in capsys.readouterr().err


def test_run_writer_and_import_take_a_tokenizer(tmp_path, capsys, vocab):
    import torch
    from torch import nn

    from rnn_tui import RunWriter
    from rnn_tui.cli import main
    from rnn_tui.engine.checkpoint import load_model
    from rnn_tui.engine.probes import trace

    class Net(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.embedding = nn.Embedding(n, 8)
            self.rnn = nn.GRU(8, 12, batch_first=True)
            self.head = nn.Linear(12, n)

        def forward(self, x):
            out, _ = self.rnn(self.embedding(x))
            return self.head(out)

    torch.manual_seed(0)
    net = Net(len(vocab)).eval()
    tok = tmp_path / "tokenizer.json"
    tok.write_text(vocab.tokenizer, encoding="utf-8")
    run = tmp_path / "mine"
    with RunWriter(run, level="bpe", tokenizer=str(tok), quiet=True) as w:
        w.log(0, loss=3.0)
        w.checkpoint(net, step=0)
    lm = load_model(run)
    assert lm.vocab == vocab and (run / "tokenizer.json").read_text(encoding="utf-8") == vocab.tokenizer
    text = "the cats that we saw were happy"
    ids = torch.as_tensor(vocab.encode(text).ids)[None]
    with torch.no_grad():
        _, h = net.rnn(net.embedding(ids))
    assert np.allclose(trace(lm, text).hidden[0, -1], h[0, 0].numpy(), atol=1e-5)
    with pytest.raises(ConfigError, match="tokenizer"):
        RunWriter(tmp_path / "x", level="bpe")
    # The same weights as a state_dict: `rnn-tui import --level bpe --vocab tokenizer.json`.
    torch.save(net.state_dict(), tmp_path / "net.pt")
    out = tmp_path / "imported"
    assert main(["import", str(tmp_path / "net.pt"), "--level", "bpe", "--vocab", str(tok), "--out", str(out)]) == 0
    assert load_model(out).vocab == vocab
    capsys.readouterr()


async def test_the_stepper_and_sampling_screens_show_a_bpe_models_pieces_and_text():
    from rnn_tui.app import RnnTuiApp
    from rnn_tui.engine.corpus import grammar_categories
    from rnn_tui.engine.model import LoadedModel, ModelConfig, build_model
    from rnn_tui.screens.sampling import SamplingScreen

    from pilot_helpers import settle, text_of, wait_for

    vocab = Vocab.build(TEXT, "bpe", bpe_vocab=80)
    model = build_model(ModelConfig(vocab_size=len(vocab), cell="gru", embed=8, hidden=12), seed=0, device="cpu")
    lm = LoadedModel(model=model.eval(), vocab=vocab,
                     meta={"corpus": "agreement", "level": "bpe", "categories": grammar_categories()})
    app = RnnTuiApp(lm=lm, cursor_blink=False, sentence="the cats that we saw were happy")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        strip = str(app.screen.query_one("#stepper-tokens").render())
        assert "▁cats" in strip or "▁cat" in strip
        assert "were" in str(app.screen.query_one("#stepper-agreement").render())
        await pilot.press("4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SamplingScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.history and screen.history[-1].done, what="a sample")
        text = "".join(screen.history[-1].texts)
        assert text.strip() and "▁" not in text
        await pilot.press("3")  # gradients: no bundled char-level curve on this model's axis
        await settle(pilot)
        await wait_for(pilot, lambda: "not drawn" in text_of(app.screen, "#gr-words", 200),
                       what="the gradients' words")
        words = text_of(app.screen, "#gr-words", 200)
        assert "they read characters, this model subword pieces" in words
        assert "this " in words


def test_a_cut_piece_label_keeps_its_letters():
    from rnn_tui.render.heatmap import token_label

    assert token_label("▁cat", 2) == "ca"
    assert token_label("▁a", 2) == "▁a"  # whole: the word-start mark stays
    assert token_label("▁", 1) == "▁"
    assert token_label("▁that", 4) == "that"
    assert token_label("▁yesterday", 4) == "yes…"
    assert token_label("▁the", 4) == "▁the"


def test_a_given_tokenizers_truncation_and_padding_are_turned_off(tmp_path):
    import tokenizers as tk

    tok = subword.tokenizer_from_json(Vocab.build(TEXT, "bpe", bpe_vocab=80).tokenizer)
    saved = tk.Tokenizer.from_str(tok.to_str())
    saved.enable_truncation(max_length=16)
    saved.enable_padding(length=64, pad_id=0, pad_token="<unk>")
    path = tmp_path / "tokenizer.json"
    path.write_text(saved.to_str(), encoding="utf-8")
    mine = Vocab.from_tokenizer(path)
    ids = mine.encode(TEXT).ids
    assert len(ids) > 16 and mine.decode(ids) == TEXT  # not cut to 16 pieces
    assert mine.split("the cat") == ["▁the", "▁cat"]  # not padded to 64
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    corpus = load_corpus(str(text), "bpe", vocab=mine)
    assert len(corpus.train) + len(corpus.val) == len(ids)


def test_sampled_pieces_of_a_byte_level_tokenizer_print_each_character_once():
    import tokenizers as tk

    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=300, initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
                                     show_progress=False)
    tok.train_from_iterator(["the café was nice, the naïve cat was here " * 30], trainer)
    vocab = Vocab.from_tokenizer(tok)
    text = "the cat sat in a café: 日本"  # 日 and 本 are three bytes each, split over pieces
    ids = list(vocab.encode(text).ids)
    printed = "".join(vocab.piece_text(ids[max(0, i - 8):i], ids[i]) for i in range(len(ids)))
    assert printed == vocab.decode(ids) == text


def test_a_text_without_spaces_trains_in_pieces_of_bounded_length(tmp_path, monkeypatch):
    import rnn_tui.engine.corpus.stream as stream

    text = "日本語のテキスト" * 5000 + "\nthe\tcat \n\twas\t\n happy\n"
    vocab = Vocab.build(text, "bpe", bpe_vocab=120)
    assert max(len(p) for p in vocab.tokens) <= subword.MAX_PIECE
    assert vocab.decode(vocab.encode(text).ids) == text
    # Chunks that start with a tab or a line break get no word-start mark of their own.
    monkeypatch.setattr(stream, "CHUNK_BYTES", 97)
    lines = "\n".join(("the cat\t" if i % 3 else "  a dog ") * (i % 4) + ("\t" if i % 2 else "")
                      for i in range(300))
    path = tmp_path / "tabs.txt"
    path.write_text(lines, encoding="utf-8")
    corpus = load_corpus(str(path), "bpe", bpe_vocab=60)
    ids = np.concatenate([corpus.train, corpus.val])
    assert np.array_equal(ids, corpus.vocab.encode(lines).ids)
    assert corpus.vocab.decode(ids) == lines


def test_a_vocabulary_too_large_for_its_checkpoint_is_refused_before_training(monkeypatch):
    from rnn_tui.engine import checkpoint
    from rnn_tui.engine.run_writer import RunWriter

    vocab = Vocab.build(TEXT, "bpe", bpe_vocab=80)
    checkpoint.check_vocab_fits(vocab)
    monkeypatch.setattr(checkpoint, "MAX_CONFIG_BYTES", 32 << 10)
    with pytest.raises(ConfigError, match=r"config\.json would be .* and its tokenizer.*smaller vocabulary"):
        checkpoint.check_vocab_fits(vocab)
    with pytest.raises(ConfigError, match="smaller vocabulary"):
        RunWriter("unused", level="bpe", tokenizer=vocab.tokenizer)


def _byte_level_tokenizer(texts, vocab_size=300):
    import tokenizers as tk

    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                     initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return tok


def test_a_byte_level_tokenizers_pieces_are_shown_as_text():
    """GPT-2's tokenizer writes bytes as stand-in letters ("Ġthe", "Ċ", "Ã©"): shown as text."""
    tok = _byte_level_tokenizer(["the café was here\nthe cats were there\n" * 20])
    vocab = Vocab.from_tokenizer(tok)
    assert vocab.tokens == tuple(tok.id_to_token(i) for i in range(len(vocab)))  # what the tokenizer has
    enc = vocab.encode("the café\nthe cats")
    assert [tok.id_to_token(i) for i in enc.ids][:3] == ["the", "ĠcafÃ©", "Ċ"]
    assert enc.tokens[:3] == ("the", "▁café", "\n")
    assert "<|endoftext|>" in vocab.shown  # a special token stays as written
    lone = vocab.shown[vocab.stoi["Ã"]]  # the first byte of "é" alone (0xC3)
    assert lone == "<0xC3>"
    assert len(set(vocab.shown)) == len(vocab.shown)
    assert not any(ch in "".join(vocab.shown) for ch in "ĠĊ")
    assert vocab.id_of("▁café") == vocab.id_of("ĠcafÃ©") == vocab.stoi["ĠcafÃ©"]
    # A tokenizer that is not byte-level keeps its pieces.
    plain = Vocab.build("the cat was here " * 10, "bpe", bpe_vocab=40)
    assert plain.shown is plain.tokens


def test_a_byte_level_model_traces_and_finds_its_verb_slot(tmp_path, capsys):
    from rnn_tui.cli import main
    from rnn_tui.engine.checkpoint import load_model
    from rnn_tui.engine.probes import trace, verb_agreement

    path = tmp_path / "gpt2ish.json"
    text = "the cat that we saw was happy.\nthe cats near the dog were here.\n\n\tit sat.\r\n" * 30
    path.write_text(_byte_level_tokenizer([text], 400).to_str(), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "agreement", "--level", "bpe", "--tokenizer", str(path), "--steps", "3", "--hidden", "16",
                 "--embed", "8", "--seq-len", "16", "--batch", "4", "--out", str(run)]) == 0
    capsys.readouterr()
    lm = load_model(run)
    tr = trace(lm, "the cats that we saw were happy")
    assert tr.tokens[:2] == ("the", "▁cats")
    assert all("Ġ" not in t for row in tr.topk_tokens for t in row)
    va = verb_agreement(lm, "the cats that we saw were happy")
    assert va is not None and va.correct == "were"
    assert tr.tokens[va.verb_position] == "▁were"
    from rnn_tui.engine.attribution import attribution

    shown = attribution(lm, "the cats that we saw", target="▁were")
    written = attribution(lm, "the cats that we saw", target="Ġwere")
    assert shown.target == written.target == "▁were" and shown.target_id == written.target_id
    assert main(["trace", str(run), "the cat was", "--json"]) == 0
    assert "Ġ" not in capsys.readouterr().out
    # Pieces of line breaks and tabs ("\n\n", "\r\n") keep the table one row per token.
    odd = "the cat.\n\n\tit sat.\r\nthe"
    assert main(["trace", str(run), odd]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    n = len(trace(lm, odd).tokens)
    assert [r.split()[0] for r in rows[:n]] == [str(t) for t in range(n)]
    assert all(r.isprintable() for r in rows)


async def test_the_training_form_shows_the_bpe_settings_and_keeps_a_models_tokenizer(tmp_path, capsys,
                                                                                     monkeypatch):
    """A subword model on screen: the form shows vocab and tok file (only with level bpe), and
    space trains on the model's own tokenizer, so the new run reads the same pieces."""
    import torch

    from rnn_tui.cli import main
    from rnn_tui.engine.checkpoint import load_model

    from pilot_helpers import wait_for
    from test_training_screen import TINY, TrainingFirstApp, open_training

    run = tmp_path / "bpe-run"
    assert main(["train", "agreement", "--level", "bpe", "--bpe-vocab", "60", "--steps", "2", "--hidden", "16",
                 "--embed", "8", "--seq-len", "16", "--batch", "4", "--out", str(run)]) == 0
    capsys.readouterr()
    lm = load_model(run, "cpu")
    monkeypatch.chdir(tmp_path)  # the form shows the file relative to here, the run records it whole
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    app = TrainingFirstApp(lm=lm, cursor_blink=False, device="cpu", runs_dir=tmp_path / "runs",
                           train_defaults={**TINY, "steps": 4})
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_training(pilot)
            await pilot.press("1", "2")  # shown again: the form follows the model on screen
            await pilot.pause()
            form = screen.form
            values = form.values()
            assert values["level"] == "bpe" and values["tokenizer"] == "bpe-run/tokenizer.json"
            assert int(values["bpe_vocab"]) == len(lm.vocab)
            assert form.query_one("#tr-row-tokenizer").display and form.query_one("#tr-row-bpe_vocab").display
            await pilot.press("space")
            await wait_for(pilot, lambda: screen.runs and screen.runs[-1].state == "done", what="the run")
            assert screen.runs[-1].trainer.vocab.tokenizer == lm.vocab.tokenizer
            assert screen.runs[-1].trainer.config.tokenizer == str(run / "tokenizer.json")
            # Level char: the BPE rows go, and their settings with them.
            form.fill(level="char")
            await pilot.pause()
            assert not form.query_one("#tr-row-tokenizer").display
            config = form.build_config()
            assert config.level == "char" and config.tokenizer is None
            assert str(form.query_one("#tr-form-error").render()).strip() == ""
    finally:
        torch.set_num_threads(before)
