"""Unit inspector: selection, corpus search, batched encoding and input attribution."""

import copy
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_tui.engine import probes
from rnn_tui.engine.corpus import TOY_ALPHABET, Vocab
from rnn_tui.engine.errors import ConfigError, ProbeLimitError, VocabError
from rnn_tui.engine.attribution import attribution
from rnn_tui.engine.units import (
    CorpusStates, encode_corpus_states, find_matches, select_units, trace_values, values_for,
)
from rnn_tui.engine.model import LoadedModel, ModelConfig, build_model

VOCAB = Vocab(tokens=tuple(TOY_ALPHABET), level="char")
TEXT = ("the cat that we saw yesterday was happy. a dog ran to the cat and the cat ran off. "
        "the small bird sang near the old river while we slept.")
SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny ops on a busy 2-core machine: a second intra-op thread only adds contention.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make(cell="lstm", layers=1, hidden=8, nonlinearity="auto", seed=0) -> LoadedModel:
    cfg = ModelConfig(vocab_size=len(VOCAB), cell=cell, embed=6, hidden=hidden, layers=layers,
                      nonlinearity=nonlinearity)
    model = build_model(cfg, seed=seed)
    model.eval()
    return LoadedModel(model, VOCAB, {"corpus": "test"})


# ------------------------------------------------------------------------- select_units
def test_select_units_hand_made():
    v = np.array([
        # u0    u1    u2    u3    u4
        [0.9, 0.1, 0.9, 0.9, 0.0],
        [0.9, 0.9, 0.1, 0.9, 0.9],  # span starts here
        [0.9, 0.9, 0.9, 0.9, 0.5],
        [0.9, 0.9, 0.9, 0.9, 0.9],  # span ends after this row
        [0.9, 0.1, 0.9, 0.1, 0.9],
    ])
    # u0 on everywhere, u1 on in the span only, u2 dips inside, u3 on before, u4 hits exactly 0.5.
    np.testing.assert_array_equal(select_units(v, (1, 4), 0.5), [0, 1, 3, 4])
    np.testing.assert_array_equal(select_units(v, (1, 4), 0.5, off_outside=True), [1])
    assert select_units(v, (1, 4), 0.5).dtype == np.int64
    # A span at the start has no step before it to be off: only the step after counts.
    np.testing.assert_array_equal(select_units(v, (0, 4), 0.5, off_outside=True), [3])
    np.testing.assert_array_equal(select_units(v, (2, 5), 0.5, off_outside=True), [2])  # u4 is on before
    assert select_units(v, (1, 4), 0.95).size == 0
    for bad in [(3, 3), (-1, 2), (0, 6), "ab", None]:
        with pytest.raises(ConfigError):
            select_units(v, bad, 0.5)
    with pytest.raises(ConfigError):
        select_units(v[0], (0, 1), 0.5)


# ------------------------------------------------------------------------- find_matches
def planted(storage: str) -> tuple[CorpusStates, np.ndarray]:
    """Noise below 0.5 with the units {2, 5, 9} on together in a few planted places."""
    rng = np.random.default_rng(0)
    N, H = 6000, 16
    v = rng.uniform(-1.0, 0.45, size=(N, H)).astype(np.float32)
    units = np.array([2, 5, 9])
    # Stray single units switch on all the time; only planted places have all three.
    stray = rng.integers(0, N, 3000)
    v[stray, rng.choice(units, 3000)] = 0.8
    for a, b in [(500, 520), (1000, 1006), (2000, 2003), (3000, 3006), (5000, 5006), (5500, 5506)]:
        v[a - 2:b + 2] = rng.uniform(-1.0, 0.45, size=(b - a + 4, H))  # no strays at the edges
    v[1000:1006, units] = 0.9
    v[1000:1006, [0, 1, 3]] = 0.9          # same units + 3 others: score 0
    v[2000:2003, units] = 0.9              # too short
    v[3000:3006, units] = 0.9              # the exact pattern: 6 steps, nothing else on
    v[500:520, units] = 0.9                # nothing else on but far longer (and earlier)
    v[5000:5006, units] = 0.9              # exact length, one other unit on throughout
    v[5000:5006, 7] = 0.7
    v[4999, units] = 0.0                   # clean edges for the off-outside check:
    v[5006, units] = 0.0                   # 5000 is off before and after,
    v[2999, units[0]] = 0.7                # 3000 is not (unit 2 on just before it;
    v[2999, units[1:]] = 0.0               # the run still starts at 3000 since the others are off)
    v[5500:5506, units] = 0.9              # like 5000, but unit 5 is on just after it
    v[5500:5506, 11] = 0.7
    v[5499, units] = 0.0
    v[5506, units] = [0.0, 0.7, 0.0]
    ids = rng.integers(0, len(VOCAB), N)
    return CorpusStates.from_array(v, ids, VOCAB, storage=storage, value_range=(-1.0, 1.0)), units


@pytest.mark.parametrize("storage", ["float32", "float16", "uint8"])
def test_find_matches_ranks_the_planted_pattern_first(storage):
    states, units = planted(storage)
    res = find_matches(states, units, 0.5, span_len=6, top=10)
    starts = [m.start for m in res.matches]
    assert starts[0] == 3000 and res.matches[0].end == 3006
    assert res.matches[0].score == 3 and res.matches[0].extra == 0
    assert starts[1] == 500 and res.matches[1].length == 20  # full score, worse length
    assert set(starts[2:4]) == {5000, 5500} and starts[4] == 1000  # one other unit beats three
    assert res.matches[2].score == 2 and res.matches[3].score == 2
    assert res.matches[4].score == 0
    assert 2000 not in starts  # shorter than span_len
    assert res.total == 5
    assert res.matches[0].mean == pytest.approx(0.9, abs=0.01)
    # The snippet marks exactly the run's text.
    m = res.matches[0]
    assert m.snippet[m.mark_start:m.mark_end] == VOCAB.decode(states.ids[3000:3006])
    assert m.snippet.startswith(VOCAB.decode(states.ids[2970:3000]))
    # span_len 3 lets the 3-step run in, and first: same score, exact length.
    short = find_matches(states, units, 0.5, span_len=3, top=10)
    assert [m.start for m in short.matches[:3]] == [2000, 3000, 500] and short.total == 6
    # Off outside: 3000 has unit 2 on just before it, 5500 unit 5 just after.
    off = find_matches(states, units, 0.5, span_len=6, off_outside=True, top=10)
    off_starts = [m.start for m in off.matches]
    assert 5000 in off_starts and 3000 not in off_starts and 5500 not in off_starts
    json.dumps(res.to_json())


@pytest.mark.parametrize("storage,value_range", [("float32", None), ("uint8", (-1.0, 1.0)),
                                                 ("uint8", None)])
def test_find_matches_scores_against_brute_force(monkeypatch, storage, value_range):
    """Both reduction paths (in place for few dense runs, gathered otherwise) against a loop."""
    from rnn_tui.engine.units import search as ins
    rng = np.random.default_rng(1)
    v = rng.uniform(-1.0, 1.0, size=(3000, 8)).astype(np.float32)
    v[:, 3] = np.abs(v[:, 3])  # unit 3 on more often, so extras happen
    states = CorpusStates.from_array(v, rng.integers(0, 28, 3000), VOCAB, storage=storage,
                                     value_range=value_range)
    units, thr = np.array([0, 5]), -0.6013
    vals = states.values()
    results = []
    for few in (10**9, 0):
        monkeypatch.setattr(ins, "_FEW_RUNS", few)
        res = find_matches(states, units, thr, 2, top=10**6)
        results.append(res)
        assert res.total == len(res.matches) > 50
        for m in res.matches:
            block = vals[m.start:m.end]
            assert (block[:, units] >= thr).all()
            assert m.start == 0 or (vals[m.start - 1, units] < thr).any()
            assert m.end == 3000 or (vals[m.end, units] < thr).any()
            others = np.setdiff1d(np.arange(8), units)
            assert m.extra == int((block[:, others] >= thr).all(0).sum())
            assert m.mean == pytest.approx(float(block[:, units].mean()), abs=1e-5)
    a, b = results
    assert [(m.start, m.end, m.score) for m in a.matches] == [(m.start, m.end, m.score) for m in b.matches]


def test_find_matches_edges_and_errors():
    v = np.full((10, 3), -1.0, dtype=np.float32)
    v[:3, 0] = 1.0          # a run at the very start
    v[7:, 0] = 1.0          # and one at the very end
    states = CorpusStates.from_array(v, np.zeros(10, dtype=np.int64), VOCAB, storage="uint8",
                                     value_range=(-1.0, 1.0))
    res = find_matches(states, [0], 0.0, span_len=3, off_outside=True)
    assert sorted((m.start, m.end) for m in res.matches) == [(0, 3), (7, 10)]
    # A threshold above the top of the grid can never be met.
    assert find_matches(states, [0], 1.5, span_len=1).total == 0
    # One below the bottom is met everywhere: one run of the whole corpus.
    assert [(m.start, m.end) for m in find_matches(states, [1], -2.0, 1).matches] == [(0, 10)]
    with pytest.raises(ConfigError):
        find_matches(states, [], 0.0, 1)
    with pytest.raises(ConfigError):
        find_matches(states, [3], 0.0, 1)
    with pytest.raises(ConfigError):
        find_matches(states, [0], 0.0, 0)


# -------------------------------------------------------------------------- encoding
def stepwise_values(lm, ids, value, layer):
    with torch.no_grad():
        out = lm.model.stepwise(torch.as_tensor(ids)[None])
    if value == "hidden":
        return out.hidden_stack()[layer, 0].numpy()
    return out.internals["c" if value == "cell" else value][layer, 0].numpy()


@pytest.mark.parametrize("cell,layers,layer", [("lstm", 2, 0), ("lstm", 2, 1), ("gru", 2, 1),
                                               ("rnn", 1, 0)])
def test_batched_streams_equal_stepwise(cell, layers, layer):
    lm = make(cell, layers=layers)
    ids = VOCAB.encode(TEXT).ids
    N = len(ids)
    for value in values_for(cell):
        # 3 streams, 5 tokens of warmup, chunks of 7 steps: state carried across chunks.
        st = encode_corpus_states(lm, TEXT, value=value, layer=layer, storage="float32",
                                  streams=3, warmup=5, chunk=7)
        assert st.streams == 3 and st.complete and st.data.shape == (N, 8)
        for b in range(3):
            a, e = b * st.stream_len, min(N, (b + 1) * st.stream_len)
            s0 = int(st.stream_start(b))
            want = stepwise_values(lm, ids[s0:e], value, layer)[a - s0:]
            np.testing.assert_allclose(st.data[a:e], want, atol=1e-5, err_msg=f"{value} stream {b}")
        # One stream is the whole text from a zero state.
        one = encode_corpus_states(lm, TEXT, value=value, layer=layer, storage="float32",
                                   streams=1, chunk=16)
        np.testing.assert_allclose(one.data, stepwise_values(lm, ids, value, layer), atol=1e-5)
        # uint8 codes decode to within half a step (one step for a calibrated range).
        q = encode_corpus_states(lm, TEXT, value=value, layer=layer, streams=1, chunk=16)
        tol = q.step * (0.5 if value != "cell" else 1.0) + 1e-6
        assert np.all(np.abs(q.values() - one.data) <= tol)


def test_encode_limits_stop_progress_and_cell_range():
    lm = make("lstm")
    with pytest.raises(ConfigError):
        encode_corpus_states(make("gru"), TEXT, value="cell")
    with pytest.raises(ConfigError):
        encode_corpus_states(lm, TEXT, value="q")
    with pytest.raises(VocabError):
        encode_corpus_states(lm, "###")
    seen = []
    st = encode_corpus_states(lm, TEXT * 4, value="c", streams=4, warmup=3, chunk=5,
                              progress=lambda d, n: seen.append((d, n)), max_tokens=300)
    assert st.n_tokens == 300 and seen[-1] == (300, 300)
    assert all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))
    # The cell state's calibrated range covers every value: codes at 0/255 only at the extremes.
    f32 = encode_corpus_states(lm, TEXT * 4, value="c", streams=4, warmup=3, chunk=5,
                               max_tokens=300, storage="float32")
    assert np.all(np.abs(st.values() - f32.data) <= st.step + 1e-6)
    # Stopped after the first chunk: a partial result that says where it is valid.
    stop = threading.Event()
    part = encode_corpus_states(lm, TEXT * 4, streams=4, warmup=3, chunk=5,
                                progress=lambda d, n: stop.set(), stop=stop)
    assert not part.complete and part.steps_done == 5
    cov = part.covered()
    assert cov[:5].all() and not cov[5:part.stream_len].any() and cov.sum() == 5 + 3 * 2
    json.dumps(part.to_json())


# ------------------------------------------------------------------------ attribution
def logp_fused64(lm, ids, pos, target, x=None):
    """log p(target) after position `pos`, by the fused module on a float64 copy."""
    m = copy.deepcopy(lm.model).double()
    with torch.no_grad():
        if x is None:
            x = m.embed(torch.as_tensor(ids[: pos + 1]))[None]
        out, _ = m.rnn(x)
        return torch.log_softmax(m.head(out[0, -1]), -1)[target], x


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_grad_x_input_equals_independent(cell):
    lm = make(cell, layers=2, hidden=12)
    text = "the cat sat on the mat"
    ids = VOCAB.encode(text).ids
    pos = 15
    att = attribution(lm, text, position=pos)
    assert att.position == pos and att.actual_next and att.target == text[pos + 1]
    assert np.isnan(att.scores[pos + 1:]).all() and np.isfinite(att.scores[: pos + 1]).all()
    # Autograd through the fused module on a float64 copy.
    m = copy.deepcopy(lm.model).double()
    x = m.embed(torch.as_tensor(ids[: pos + 1])).detach()[None].requires_grad_(True)
    out, _ = m.rnn(x)
    lp = torch.log_softmax(m.head(out[0, -1]), -1)[att.target_id]
    (g,) = torch.autograd.grad(lp, x)
    want = (g * x).sum(-1)[0].detach().numpy()
    np.testing.assert_allclose(att.scores[: pos + 1], want, rtol=1e-4, atol=1e-6)
    assert att.target_prob == pytest.approx(float(lp.detach().exp()), rel=1e-5)
    # Finite differences: score_k is d/da log p with x_k scaled by a, at a = 1.
    x0 = x.detach()
    for k in (0, 7, pos):
        fd = []
        for a in (1 + 1e-6, 1 - 1e-6):
            xk = x0.clone()
            xk[0, k] *= a
            fd.append(float(logp_fused64(lm, ids, pos, att.target_id, xk)[0]))
        assert att.scores[k] == pytest.approx((fd[0] - fd[1]) / 2e-6, rel=1e-3, abs=1e-6)
    # float64 path agrees with the float32 one.
    att64 = attribution(lm, text, position=pos, dtype=torch.float64)
    np.testing.assert_allclose(att64.scores[: pos + 1], want, rtol=1e-9, atol=1e-12)


def test_occlusion_is_causal_and_exact(monkeypatch):
    lm = make("lstm", layers=2)
    text = "the cat sat on the mat"
    pos = 16
    full = attribution(lm, text, position=pos, method="occlusion")
    assert full.neutral == "space"
    assert np.isnan(full.scores[pos + 1:]).all()
    # Nothing after the position can change it: the truncated text gives the same scores.
    cut = attribution(lm, text[: pos + 1], method="occlusion", target=full.target_id)
    np.testing.assert_allclose(full.scores[: pos + 1], cut.scores, atol=1e-6)
    # Independent: drop of log p when token k is replaced by a space, by the fused float64
    # model run from scratch on each occluded text.
    ids = VOCAB.encode(text).ids
    base = float(logp_fused64(lm, ids, pos, full.target_id)[0])
    want = []
    for k in range(pos + 1):
        occ = ids.copy()
        occ[k] = VOCAB.stoi[" "]
        want.append(base - float(logp_fused64(lm, occ, pos, full.target_id)[0]))
    np.testing.assert_allclose(full.scores[: pos + 1], want, atol=1e-5)
    assert full.scores[3] == 0.0  # occluding a space with a space changes nothing
    # Small blocks and windows: the prefix-state reuse and the windowing give the same scores.
    from rnn_tui.engine import attribution as ins
    monkeypatch.setattr(ins, "_OCCLUSION_ROWS", 3)
    monkeypatch.setattr(ins, "_OCCLUSION_WINDOW", 4)
    small = attribution(lm, text, position=pos, method="occlusion")
    np.testing.assert_allclose(small.scores[: pos + 1], want, atol=1e-5)
    z = attribution(lm, text, position=pos, method="occlusion", neutral="zero")
    assert z.neutral == "zero" and np.isfinite(z.scores[: pos + 1]).all()
    assert not np.allclose(z.scores[: pos + 1], want)


def test_attribution_ignores_training_mode_dropout():
    cfg = ModelConfig(vocab_size=len(VOCAB), cell="lstm", embed=6, hidden=8, layers=2, dropout=0.5)
    lm = LoadedModel(build_model(cfg, seed=1).eval(), VOCAB, {})
    ref = {m: attribution(lm, "the cat sat", method=m).scores for m in ("grad_x_input", "occlusion")}
    lm.model.train()  # e.g. a trainer running: the fused module would drop units between layers
    for m, want in ref.items():
        np.testing.assert_allclose(attribution(lm, "the cat sat", method=m).scores, want, atol=1e-6)


def test_attribution_targets_words_and_errors():
    lm = make("lstm")
    att = attribution(lm, "the cat")  # last token: the model's own top prediction
    assert not att.actual_next and att.position == 6
    t2 = attribution(lm, "the cat", target="s")
    assert t2.target == "s" and t2.target_id == VOCAB.stoi["s"]
    words = att.words({"cat": "NOUN"})
    assert [(w.start, w.end, w.word, w.category) for w in words] == [(0, 3, "the", None),
                                                                     (4, 7, "cat", "NOUN")]
    assert words[1].score == pytest.approx(att.scores[4:7].sum())
    # A word entirely after the position has no score.
    mid = attribution(lm, "the cat", position=2)
    assert np.isnan(mid.words()[1].score)
    json.dumps(att.to_json())
    for kw in ({"position": 7}, {"position": -8}, {"method": "saliency"}, {"target": 99},
               {"target": True}):
        with pytest.raises(ConfigError):
            attribution(lm, "the cat", **kw)
    with pytest.raises(VocabError):
        attribution(lm, "the cat", target="Q")
    with pytest.raises(ProbeLimitError):
        attribution(lm, "the cat " * 500, method="occlusion")


def test_trained_model_leans_on_the_previous_character(bundled_lm):
    """Occluding the character just read matters more than one from far back (loose)."""
    text = "the cat that we saw yesterday was happy. the dog chased the girl."
    wins = 0
    cases = [(text.index("yesterday") + 4, 0), (text.index("chased") + 3, 2),
             (text.index("happy") + 2, 5), (len(text) - 3, 10)]
    for pos, far in cases:
        att = attribution(bundled_lm, text, position=pos, method="occlusion")
        wins += abs(att.scores[pos]) > abs(att.scores[far])
    assert wins >= 3


# --------------------------------------------------------------------- trace helpers
def test_trace_values_picks_layer_and_value():
    lm = make("lstm", layers=2)
    tr = probes.trace(lm, "the cat")
    np.testing.assert_array_equal(trace_values(tr), tr.hidden[1])
    np.testing.assert_array_equal(trace_values(tr, "cell", 0), tr.gates["c"][0])
    np.testing.assert_array_equal(trace_values(tr, "f", -2), tr.gates["f"][0])
    with pytest.raises(ConfigError):
        trace_values(tr, "r")
    assert values_for("gru") == ("hidden", "r", "z", "n")


# ----------------------------------------------------------------- tinyshakespeare
def test_tinyshakespeare_encode_and_search(bundled_lm):
    if not SHAKESPEARE.is_file():
        pytest.skip(f"{SHAKESPEARE} is absent")
    text = SHAKESPEARE.read_text(encoding="utf-8")
    st = encode_corpus_states(bundled_lm, text, max_tokens=100_000, threads=1)
    assert st.n_tokens == 100_000 and st.lowercased and st.complete
    assert st.data.nbytes == 100_000 * 64
    sentence = "first citizen: before we proceed any further, hear me speak."
    tr = probes.trace(bundled_lm, sentence)
    vals = trace_values(tr)
    span = (6, 13)  # "citizen"
    units = select_units(vals, span, 0.3)
    assert units.size
    res = find_matches(st, units, 0.3, span[1] - span[0], top=20)  # its speed: `rnn-tui bench`
    assert res.total >= len(res.matches) > 0
    for m in res.matches:  # every hit really has all the units on, for a maximal run
        assert m.length >= span[1] - span[0]
        block = st.values(m.start, m.end, units)
        assert (block >= 0.3 - 1e-6).all()
        if m.start > 0:
            assert (st.values(m.start - 1, m.start, units) < 0.3).any()
    scores = [m.score for m in res.matches]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    lm = make("lstm", layers=2)
    gpu = LoadedModel(copy.deepcopy(lm.model).cuda(), VOCAB, lm.meta)
    for value in ("hidden", "cell", "f"):
        a = encode_corpus_states(lm, TEXT, value=value, storage="float32", streams=3, warmup=5, chunk=7)
        b = encode_corpus_states(gpu, TEXT, value=value, storage="float32", streams=3, warmup=5, chunk=7)
        np.testing.assert_allclose(a.data, b.data, atol=1e-4)
    for method in ("grad_x_input", "occlusion"):
        a = attribution(lm, "the cat sat on the mat", method=method)
        b = attribution(gpu, "the cat sat on the mat", method=method)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


# ------------------------------------------------------------------------- the model's own corpus
def _trained_on_a_file(tmp_path, text="the quick brown fox jumps over the lazy dog. " * 40):
    """A real (tiny) run on a text file, saved and loaded back as a person would."""
    from rnn_tui.engine.checkpoint import load_model
    from rnn_tui.engine.train import TrainConfig, Trainer

    corpus_file = tmp_path / "fox.txt"
    corpus_file.write_text(text)
    run = tmp_path / "run"
    Trainer(TrainConfig(corpus=str(corpus_file), hidden=8, embed=4, seq_len=8, batch=2, steps=2,
                        eval_every=0, device="cpu"), run_dir=run).run()
    return corpus_file, load_model(run, device="cpu")


def test_the_inspector_searches_the_text_the_model_was_trained_on(tmp_path, monkeypatch):
    from rnn_tui.engine.corpus import corpus_for_model, load_corpus
    from rnn_tui.engine.errors import CorpusError

    corpus_file, lm = _trained_on_a_file(tmp_path)
    assert lm.meta["corpus_source"]["path"] == str(corpus_file.resolve())
    monkeypatch.chdir(tmp_path / "run")  # another directory: the bare name would not be found
    found = corpus_for_model(lm)
    assert found.note == str(corpus_file.resolve()) and "quick brown fox" in found.corpus.vocab.decode(
        found.corpus.train[:60])
    # Gone: said so, with where it was and how to point at it, never the grammar instead.
    moved = tmp_path / "elsewhere.txt"
    corpus_file.rename(moved)
    with pytest.raises(CorpusError, match=r"trained on .*fox\.txt, which is not there any more.*--corpus"):
        corpus_for_model(lm)
    # The same text moved, given with --corpus: recognised by its size and hash.
    again = corpus_for_model(lm, load_corpus(str(moved)))
    assert "the text it was trained on" in again.note
    # Another text given: refused, not searched as if it were the model's.
    other = tmp_path / "other.txt"
    other.write_text("a completely different text about birds. " * 30)
    with pytest.raises(CorpusError, match="is another text"):
        corpus_for_model(lm, load_corpus(str(other)))
    # A bundled corpus by its name.
    bundled = LoadedModel(make().model, VOCAB, {"corpus": "grammar"})
    assert corpus_for_model(bundled).note == "grammar"


async def test_the_inspector_screen_says_the_corpus_is_gone(tmp_path):
    from rnn_tui.app import RnnTuiApp

    from pilot_helpers import settle, wait_for

    corpus_file, lm = _trained_on_a_file(tmp_path)
    corpus_file.unlink()
    app = RnnTuiApp(lm=lm, cursor_blink=False, device="cpu")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("8")
        screen = app.screen
        await wait_for(pilot, lambda: screen.corpus_error != "", what="the corpus error", timeout=30)
        await settle(pilot)
        text = str(screen.query_one("#in-matches").render())
        assert "not there any more" in text and "--corpus" in text and "grammar" not in text
