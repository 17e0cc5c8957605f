"""Models made elsewhere: word_language_model-style modules and state_dicts mapped onto rnn-tui's
model, checked against the user's own module; RunWriter from a plain PyTorch loop."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rnn_tui.engine.errors import CheckpointError, ConfigError
from rnn_tui.engine.external import from_module, from_state_dict, read_state_dict, read_vocab

TOKENS = list(" abcdefghijklmnopqrstuvwxyz.")


class RNNModel(nn.Module):
    """pytorch/examples word_language_model's RNNModel, in its own names (seq-first)."""

    def __init__(self, rnn_type, ntoken, ninp, nhid, nlayers, dropout=0.2, tie_weights=False):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        if rnn_type in ("LSTM", "GRU"):
            self.rnn = getattr(nn, rnn_type)(ninp, nhid, nlayers, dropout=dropout if nlayers > 1 else 0.0)
        else:
            self.rnn = nn.RNN(ninp, nhid, nlayers, nonlinearity={"RNN_TANH": "tanh", "RNN_RELU": "relu"}[rnn_type],
                              dropout=dropout if nlayers > 1 else 0.0)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.rnn_type, self.nhid, self.nlayers = rnn_type, nhid, nlayers

    def forward(self, x, hidden=None):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)), hidden


def user_model(kind="LSTM", layers=2, tie=False, seed=0):
    torch.manual_seed(seed)
    nhid = 16
    m = RNNModel(kind, len(TOKENS), 16 if tie else 12, nhid, layers, tie_weights=tie)
    with torch.no_grad():  # not at init: biases matter too
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m.eval()


def ids(text):
    return torch.tensor([[TOKENS.index(c) for c in text]])


@pytest.mark.parametrize("kind,layers,tie", [("LSTM", 2, False), ("GRU", 1, False), ("RNN_TANH", 2, False),
                                             ("RNN_RELU", 1, False), ("LSTM", 1, True)])
def test_imported_states_and_probabilities_equal_the_users_module(kind, layers, tie):
    from rnn_tui.engine.probes import trace

    module = user_model(kind, layers, tie)
    text = "the cat sat on the mat."
    x = ids(text)
    mapped = from_state_dict(module.state_dict(), TOKENS, "char",
                             nonlinearity="relu" if kind == "RNN_RELU" else "tanh")
    lm = mapped.lm
    assert lm.config.cell == {"LSTM": "lstm", "GRU": "gru"}.get(kind, "rnn") and lm.config.layers == layers
    with torch.no_grad():
        logits, _ = module(x.T)  # seq-first, as word_language_model runs it
        # The user's own per-step states: their module stepped one token at a time.
        states, h = [], None
        for t in range(x.shape[1]):
            out, h = module.rnn(module.encoder(x[:, t:t + 1].T), h)
            states.append(h)
    tr = trace(lm, text, top_k=3)
    want_p = torch.softmax(logits[:, 0], -1).numpy()
    got_p = np.take_along_axis(want_p[:-1], tr.next_ids[:-1, None], 1)[:, 0]
    np.testing.assert_allclose(tr.next_prob[:-1], got_p, atol=1e-5)
    for t, s in enumerate(states):
        hs = s[0] if kind == "LSTM" else s
        for layer in range(layers):
            np.testing.assert_allclose(tr.hidden[layer][t], hs[layer, 0].numpy(), atol=1e-5)
        if kind == "LSTM":
            np.testing.assert_allclose(tr.gates["c"][-1][t], s[1][-1, 0].numpy(), atol=1e-5)


def test_from_module_finds_the_parts_by_type_and_says_what_it_left():
    class WithExtra(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(TOKENS), 8)
            self.lstm = nn.LSTM(8, 16, batch_first=True, bias=False)
            self.norm = nn.LayerNorm(16)  # not mapped: said so
            self.out = nn.Linear(16, len(TOKENS), bias=False)

    mapped = from_module(WithExtra(), TOKENS, "char")
    assert mapped.lm.config.cell == "lstm" and mapped.lm.meta["imported"]["modules"]["head"] == "out"
    note = mapped.note_line()
    assert "no biases (bias=False): zeros" in note and "output layer has no bias" in note
    assert "not mapped: norm (LayerNorm)" in note
    assert "not mapped" not in (from_module(user_model("GRU", 1), TOKENS).note_line() or "")  # Dropout: harmless

    class TwoLinears(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(TOKENS), 8)
            self.rnn = nn.GRU(8, 16)
            self.a, self.b = nn.Linear(16, len(TOKENS)), nn.Linear(16, len(TOKENS))

    with pytest.raises(ConfigError, match="several output layers.*head="):
        from_module(TwoLinears(), TOKENS)
    assert from_module(TwoLinears(), TOKENS, head="b").lm.meta["imported"]["modules"]["head"] == "b"


def test_refusals_say_why():
    bi = {"weight_ih_l0": torch.zeros(64, 8), "weight_hh_l0": torch.zeros(64, 16),
          "weight_ih_l0_reverse": torch.zeros(64, 8), "weight_hh_l0_reverse": torch.zeros(64, 16)}
    with pytest.raises(CheckpointError, match="bidirectional"):
        from_state_dict(bi, TOKENS)
    with pytest.raises(CheckpointError, match="no recurrent layer"):
        from_state_dict({"encoder.weight": torch.zeros(len(TOKENS), 8)}, TOKENS)
    sd = user_model("GRU", 1).state_dict()
    with pytest.raises(CheckpointError, match="has 27 tokens but the model.s embedding has 28 rows"):
        from_state_dict(sd, TOKENS[:-1])  # one token short


def test_a_pickled_whole_model_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.pt"

    class Boom:  # unpickling this would create the marker file
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"model": Boom(), "weight": torch.zeros(1)}, path, pickle_protocol=2)
    with pytest.raises(CheckpointError, match=r"never unpickles.*state_dict"):
        read_state_dict(path)
    assert not marker.exists()
    torch.save(user_model("GRU", 1).state_dict(), tmp_path / "ok.pt")
    assert "rnn.weight_ih_l0" in read_state_dict(tmp_path / "ok.pt")



def test_files_that_are_not_state_dicts_are_named_for_what_they_are(tmp_path):
    import zipfile

    from safetensors.torch import save_file

    noise = tmp_path / "noise.pt"
    noise.write_bytes(bytes(range(7, 250)) * 8)  # no pickle, no zip: not "a pickled object"
    with pytest.raises(CheckpointError, match="is not a torch file.*starts with the bytes 07 08 09 0a"):
        read_state_dict(noise)
    text = tmp_path / "vocab.pt"
    text.write_text("the\ncat\n")
    with pytest.raises(CheckpointError, match="is not a torch file"):
        read_state_dict(text)
    good = tmp_path / "ok.pt"
    torch.save(user_model("GRU", 1).state_dict(), good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="zip archive torch cannot read: truncated") as info:
        read_state_dict(cut)
    assert "miniz" not in str(info.value)
    with zipfile.ZipFile(tmp_path / "other.pt", "w") as z:
        z.writestr("readme.txt", "not a model")
    with pytest.raises(CheckpointError, match="zip archive torch cannot read"):
        read_state_dict(tmp_path / "other.pt")
    whole = tmp_path / "whole.pt"
    torch.save(nn.GRU(3, 4), whole)
    with pytest.raises(CheckpointError, match=r"a torch\.nn\.modules\.rnn\.GRU: a whole model"):
        read_state_dict(whole)
    misnamed = tmp_path / "weights.pt"  # safetensors under a .pt name is read as what it is
    save_file({"w": torch.ones(2)}, misnamed)
    assert torch.equal(read_state_dict(misnamed)["w"], torch.ones(2))

def test_vocab_files(tmp_path):
    lines = tmp_path / "idx2word.txt"
    lines.write_text("<unk>\nthe\ncat\n<eos>\n")
    assert read_vocab(lines, 4, "word") == ["<unk>", "the", "cat", "<eos>"]
    corpus = tmp_path / "train.txt"
    corpus.write_text("the cat sat\nthe dog\n")
    assert read_vocab(corpus, 5, "word") == ["the", "cat", "sat", "<eos>", "dog"]
    with pytest.raises(ConfigError, match="the model has 7"):
        read_vocab(corpus, 7, "word")


def test_import_command_makes_a_run_the_probes_read(tmp_path, capsys):
    from rnn_tui.cli import main

    module = user_model("LSTM", 2, tie=False)
    torch.save(module.state_dict(), tmp_path / "model.pt")
    (tmp_path / "vocab.json").write_text(json.dumps(TOKENS))
    out = tmp_path / "imported"
    assert main(["import", str(tmp_path / "model.pt"), "--vocab", str(tmp_path / "vocab.json"),
                 "--out", str(out)]) == 0
    assert "imported lstm H=16 x2" in capsys.readouterr().out
    assert main(["trace", str(out), "the cat", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["tokens"]) == 7


def test_run_writer_logs_a_plain_loop_that_the_app_reads(tmp_path):
    from rnn_tui import RunWriter
    from rnn_tui.engine.checkpoint import load_model
    from rnn_tui.runs.metrics import read_metrics

    module = user_model("GRU", 1)
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    data = ids("the cat sat on the mat. the dog sat on the log. " * 4)
    run = tmp_path / "mine"
    with RunWriter(run, vocab=TOKENS, level="char", corpus="cats and dogs", quiet=True) as w:
        for step in range(1, 6):
            logits, _ = module(data[:, :-1].T)
            loss = nn.functional.cross_entropy(logits.reshape(-1, len(TOKENS)), data[:, 1:].T.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            w.log(step, loss=loss.item(), lr=1e-2, my_metric=step * 0.5)
            if step % 2 == 0:
                w.checkpoint(module, step=step)
                module.eval()
                with torch.no_grad():  # what the step-4 checkpoint must give back
                    saved = torch.softmax(module(data[:, :10].T)[0][:, 0], -1)
                module.train()
    records, _, _ = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    assert records[2]["my_metric"] == 1.5 and math.isclose(records[0]["bits"], records[0]["loss"] / math.log(2))
    lm = load_model(run, device="cpu")
    assert lm.meta["metrics"]["step"] == 4 and lm.meta["corpus"] == "cats and dogs"
    with torch.no_grad():
        got = torch.softmax(lm.model(data[:, :10])[0][0], -1)
    # step 5's update came after the last checkpoint (step 4): the saved weights are step 4's
    torch.testing.assert_close(got, saved, atol=1e-5, rtol=0)
    with pytest.raises(ConfigError, match="log numbers"):
        w.log(6, loss="low")


def test_the_example_training_loop_runs_and_the_probes_read_its_run(tmp_path):
    from rnn_tui.engine.checkpoint import load_model
    from rnn_tui.engine.probes import trace

    script = Path(__file__).resolve().parents[1] / "examples" / "own_training_loop.py"
    out = tmp_path / "mine"
    done = subprocess.run([sys.executable, str(script), "--out", str(out), "--steps", "30"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lm = load_model(out, device="cpu")
    assert lm.config.cell == "lstm" and lm.meta["metrics"]["step"] == 30
    assert trace(lm, "the cat", top_k=2).tokens == tuple("the cat")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 30 and "perplexity" in json.loads(lines[-1])


def test_an_empty_file_is_said_to_be_empty(tmp_path):
    empty = tmp_path / "model.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        read_state_dict(empty)


def test_a_module_the_writer_cannot_map_does_not_stop_the_loop(tmp_path, capsys):
    from rnn_tui import RunWriter

    class Projected(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(TOKENS), 8)
            self.rnn = nn.LSTM(8, 16)
            self.proj = nn.Linear(16, 32)  # a layer between: no 16 -> vocabulary output layer
            self.out = nn.Linear(32, len(TOKENS))

    with RunWriter(tmp_path / "run", vocab=TOKENS, level="char") as w:
        for step in range(3):
            w.log(step, loss=1.0)
            assert w.checkpoint(Projected(), step=step) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rnn-tui: checkpoint not saved: no output layer")
    assert not (tmp_path / "run" / "config.json").exists()


def test_vocabulary_files_in_the_shapes_people_keep_them(tmp_path):
    import pickle

    pickled = tmp_path / "vocab.pkl"
    pickled.write_bytes(pickle.dumps(TOKENS))
    with pytest.raises(ConfigError, match="not UTF-8 text .a pickle. rnn-tui never unpickles.*one token per line"):
        read_vocab(pickled, len(TOKENS), "char")
    stoi = tmp_path / "stoi.json"
    stoi.write_text(json.dumps({t: i for i, t in enumerate(TOKENS)}))
    assert read_vocab(stoi, len(TOKENS), "char") == TOKENS
    stoi.write_text(json.dumps({"a": 0, "b": 2}))
    with pytest.raises(ConfigError, match="must be 0..1"):
        read_vocab(stoi, 2, "char")
    tok = tmp_path / "tokenizer.json"
    tok.write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}, "pre_tokenizer": None}))
    with pytest.raises(ConfigError, match="is a tokenizer.json: import it with --level bpe"):
        read_vocab(tok, 10, "char")
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_vocab(broken, 2, "char")
    # A character vocabulary with special tokens, as char-RNN scripts keep them.
    specials = [*TOKENS[:-2], "<pad>", "<unk>"]
    mapped = from_state_dict(user_model("GRU", 1).state_dict(), specials, "char")
    assert mapped.lm.vocab.unk == "<unk>" and mapped.lm.vocab.encode("the cat").tokens == tuple("the cat")
    with pytest.raises(ConfigError, match="is it a word vocabulary"):
        from_state_dict(user_model("GRU", 1).state_dict(), ["the", *TOKENS[1:]], "char")


def test_the_inspector_finds_the_text_a_writer_run_names(tmp_path):
    from rnn_tui import RunWriter
    from rnn_tui.engine.checkpoint import load_model
    from rnn_tui.engine.corpus import corpus_for_model, load_corpus

    text = tmp_path / "cats.txt"
    text.write_text("the cat sat on the mat. the dog sat on the log.\n" * 20)
    with RunWriter(tmp_path / "a", vocab=TOKENS, corpus=str(text), quiet=True) as w:
        w.checkpoint(user_model("GRU", 1), step=1)
    found = corpus_for_model(load_model(tmp_path / "a", device="cpu"))
    assert found.note == str(text.resolve()) and found.corpus.source["bytes"] == text.stat().st_size
    # A run that names its text in words: the text given with --corpus is taken, not "another text".
    with RunWriter(tmp_path / "b", vocab=TOKENS, corpus="cats and dogs", quiet=True) as w:
        w.checkpoint(user_model("GRU", 1), step=1)
    given = load_corpus(str(text), "char")
    assert corpus_for_model(load_model(tmp_path / "b", device="cpu"), given).corpus is given


def test_a_writer_run_given_its_steps_is_done_when_its_last_checkpoint_is(tmp_path):
    from rnn_tui import RunWriter
    from rnn_tui.runs.watch import RunWatch

    run_dir = tmp_path / "mine"
    module = user_model("GRU", 1)
    with RunWriter(run_dir, vocab=TOKENS, config={"steps": 4, "lr": 0.01}, quiet=True) as w:
        for step in range(1, 5):
            w.log(step, loss=1.0 / step)
            if step == 2:
                w.checkpoint(module, step=step)
                watched = RunWatch(run_dir)
                watched.poll_metrics()
                watched.poll_checkpoint()
                assert watched.steps == 4 and watched.state() != "done"
        w.checkpoint(module, step=4)
    watched.poll_metrics()
    assert watched.poll_checkpoint() and watched.state() == "done"
    with pytest.raises(ConfigError, match="steps is how many steps"):
        RunWriter(tmp_path / "other", vocab=TOKENS, steps=0)


def test_a_writer_run_that_ends_cleanly_reads_done_and_one_that_fails_does_not(tmp_path):
    from rnn_tui import RunWriter
    from rnn_tui.runs.watch import RunWatch

    def loop(run_dir, fail: bool):
        with RunWriter(run_dir, vocab=TOKENS, quiet=True) as w:
            for step in range(1, 4):
                w.log(step, loss=1.0 / step)
                if step == 2:
                    w.checkpoint(user_model("GRU", 1), step=step)
            if fail:
                raise RuntimeError("the user's loop died")

    loop(tmp_path / "ok", fail=False)
    with pytest.raises(RuntimeError):
        loop(tmp_path / "died", fail=True)
    states = {}
    for name in ("ok", "died"):
        watched = RunWatch(tmp_path / name)
        watched.poll_metrics()
        watched.poll_checkpoint()
        states[name] = watched.state()
    assert states["ok"] == "done" and states["died"] != "done"


def test_a_training_checkpoint_that_wraps_its_state_dict_is_read(tmp_path):
    sd = user_model("GRU", 1).state_dict()
    opt = torch.optim.Adam(user_model("GRU", 1).parameters()).state_dict()
    path = tmp_path / "ckpt.pt"
    torch.save({"model": sd, "optimizer": opt, "epoch": 3}, path)
    assert torch.equal(read_state_dict(path)["rnn.weight_hh_l0"], sd["rnn.weight_hh_l0"])
    torch.save({"generator": sd, "discriminator": sd}, path)
    with pytest.raises(CheckpointError, match=r"several state_dicts \(generator, discriminator\)"):
        read_state_dict(path)
