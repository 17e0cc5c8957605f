"""The agreement test the default sentence is: the slot finder, the flip, P(was) vs P(were),
the verb's loss in the gradient profile and the LSTM's dL/dc_t against autograd."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnn_tui.engine.agreement_text import find_agreement, flip_subject
from rnn_tui.engine.corpus import DEFAULT_SENTENCE
from rnn_tui.engine.errors import VocabError
from rnn_tui.engine.probes import gradient_profile, token_slot, verb_agreement

from conftest import make_tiny_lm

PLURAL = "the cats that we saw yesterday were happy"


def test_find_agreement_and_flip():
    slot = find_agreement(DEFAULT_SENTENCE)
    assert (slot.subject, slot.plural, slot.verb_written, slot.correct) == ("cat", False, "was", "was")
    assert DEFAULT_SENTENCE[slot.verb_start:].startswith("was") and slot.agrees
    assert flip_subject(DEFAULT_SENTENCE) == PLURAL and flip_subject(PLURAL) == DEFAULT_SENTENCE
    assert flip_subject("The Men that she met Was sad.") == "The Man that she met Were sad."
    # a wrong verb is still a slot; the flip keeps the sentence wrong the same way
    wrong = find_agreement("the dogs that he chased was tired")
    assert wrong.plural and wrong.agrees is False
    # a half-typed sentence: the slot is at its end
    open_ = find_agreement("the cats that we saw yesterday w")
    assert open_.verb_written is None and open_.verb_start == len("the cats that we saw yesterday ")
    assert find_agreement("the cats that we saw yesterday ").verb_start == len("the cats that we saw yesterday ")
    # the first sentence with a slot; none in a sentence without a subject noun or a verb form
    assert find_agreement("the girl reads the book. the mice were sad").subject == "mice"
    assert find_agreement("we were sad") is None and find_agreement("the book was small") is None
    assert find_agreement("the cat sleeps. was") is None and flip_subject("the girl reads") is None


def test_token_slot_char_and_word():
    chars = tuple(DEFAULT_SENTENCE)
    ts = token_slot(chars, "char")
    assert chars[ts.subject] == " " and DEFAULT_SENTENCE[:ts.subject].endswith("cat")
    assert chars[ts.decision] == "w" and chars[ts.decision + 1] == "a" and ts.has_target
    assert ts.decision - ts.subject == 23  # "␣that␣we␣saw␣yesterday␣w": the number is carried 23 steps
    words = tuple(DEFAULT_SENTENCE.split())
    tw = token_slot(words, "word")
    assert words[tw.subject] == "cat" and words[tw.verb] == "was" and tw.decision == tw.verb - 1
    assert not token_slot(tuple("the cats that we saw w"), "char").has_target


@pytest.mark.parametrize("level", ["char", "word"])
def test_verb_agreement_matches_the_model_s_own_probabilities(level):
    lm = make_tiny_lm("gru", level=level, seed=2)
    va = verb_agreement(lm, DEFAULT_SENTENCE)
    assert va.subject == "cat" and not va.plural and va.correct == "was" and va.verb_written == "was"
    # P(was) by hand: the product of the next-token probabilities along "was" (+ " " at char level)
    forms = {"was": "was" + (" " if level == "char" else ""), "were": "were" + (" " if level == "char" else "")}
    sep = "" if level == "char" else " "
    prefix = DEFAULT_SENTENCE[:DEFAULT_SENTENCE.index("was")]
    if level == "word":
        prefix = prefix.strip()
    for form, cont in forms.items():
        ids = lm.vocab.encode(prefix + sep + cont if level == "word" else prefix + cont).ids
        n_cont = len(lm.vocab.encode(cont).ids)
        with torch.no_grad():
            logits, _ = lm.model(torch.as_tensor(ids)[None])
        lp = torch.log_softmax(logits[0].double(), -1)
        want = sum(float(lp[len(ids) - n_cont - 1 + j, ids[len(ids) - n_cont + j]]) for j in range(n_cont))
        assert getattr(va, f"p_{form}") == pytest.approx(math.exp(want), rel=1e-9)
    assert va.p_correct == pytest.approx(va.p_was / (va.p_was + va.p_were), rel=1e-9)
    json.dumps(va.to_json(), allow_nan=False)
    assert verb_agreement(lm, "the girl reads the book") is None


def test_bundled_lstm_gets_the_default_sentence_and_its_twin_right(bundled_lm):
    for text, plural in ((DEFAULT_SENTENCE, False), (PLURAL, True)):
        va = verb_agreement(bundled_lm, text)
        assert va.plural is plural
        right = va.p_were if plural else va.p_was
        assert right >= 0.8 and va.p_correct >= 0.8, va.describe()


def test_bundled_lstm_carries_the_number_on_a_few_units_with_open_forget_gates(bundled_lm):
    """Why the LSTM's all-unit gradient curve can fall though it remembers: a few cell units
    carry the number with forget gates near 1; their cell path keeps orders of magnitude more
    gradient than the median unit's."""
    from rnn_tui.engine.probes import number_carriers
    from rnn_tui.screens.gradients.draw import GradientsComputed, ProfileEntry, verdict_words

    for text in (DEFAULT_SENTENCE, PLURAL):
        nc = number_carriers(bundled_lm, text)
        assert nc.state == "c" and nc.knows_number and nc.distance == 23
        assert nc.keep_units.mean() > nc.keep_all + 0.15  # forget gates open wider than the average unit's
        assert nc.product_units.max() > 1e4 * nc.product_median
        assert "carry the number" in nc.describe() and "highway" in nc.describe()
    profile = gradient_profile(bundled_lm, DEFAULT_SENTENCE, mode="verb")
    result = GradientsComputed([ProfileEntry("current", "this", profile, cell="lstm")], mode="verb",
                               carriers=number_carriers(bundled_lm, DEFAULT_SENTENCE), carriers_of="this")
    words = " ".join(verdict_words(result).plain.split())
    assert "carry the number, forget gates ≈" in words and "survives the 23 steps" in words
    assert "GRU" not in words  # no GRU on show: nothing said of it
    # With the bundled GRU beside it: its curve fades more, yet it knows the number, and it says so.
    from rnn_tui.engine.checkpoint import load_model

    gru = load_model("gru", "cpu")
    gp = gradient_profile(gru, DEFAULT_SENTENCE, mode="verb")
    gc = number_carriers(gru, DEFAULT_SENTENCE)
    both = GradientsComputed([ProfileEntry("current", "this", profile, cell="lstm"),
                              ProfileEntry("gru", "bundled gru", gp, cell="gru")], mode="verb",
                             carriers=result.carriers, carriers_of="this", gru_carriers=gc)
    words = " ".join(verdict_words(both).plain.split())
    assert gc.knows_number and gp.ratio_subject < profile.ratio_subject  # the bundled defaults' case
    assert f"The GRU's curve fades more ({gp.ratio_subject:.2g})" in words
    assert f"at least {min(gc.p_correct, gc.p_correct_twin):.0%} on the right verb form" in words


# --------------------------------------------------------------- the verb's loss
def _reference(lm, text, position):
    """dL/dh_t and dL/dc_t (LSTM) by autograd on the step-wise cell, float64."""
    model = lm.model.double()
    ids = torch.as_tensor(lm.vocab.encode(text).ids)
    x = model.embed(ids[None])
    H = model.config.hidden
    h = torch.zeros(1, H, dtype=torch.float64)
    c = torch.zeros(1, H, dtype=torch.float64)
    hs, cs = [], []
    for t in range(len(ids)):
        if model.config.cell == "lstm":
            h, c = model.cell_step(0, x[:, t], (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = model.cell_step(0, x[:, t], h)
        h.retain_grad()
        hs.append(h)
    logit = model.head(hs[position])
    loss = -torch.log_softmax(logit[0], -1)[ids[position + 1]]
    loss.backward()
    norm = lambda v: 0.0 if v.grad is None else float(v.grad.norm())  # noqa: E731
    return np.array([norm(v) for v in hs]), np.array([norm(v) for v in cs]), float(loss.detach())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_verb_loss_and_cell_state_gradient_match_autograd(cell):
    lm = make_tiny_lm(cell, seed=4)
    lm.model.double()
    gp = gradient_profile(lm, DEFAULT_SENTENCE, mode="verb", dtype=torch.float64)
    ts = token_slot(tuple(DEFAULT_SENTENCE), "char")
    assert gp.position == ts.decision and gp.subject == ts.subject and gp.subject_word == "cat"
    dh, dc, loss = _reference(lm, DEFAULT_SENTENCE, gp.position)
    np.testing.assert_allclose(gp.dh[0], dh, rtol=1e-9, atol=1e-300)
    assert gp.loss == pytest.approx(loss, rel=1e-12)
    assert not gp.affects_loss[gp.position + 1:].any() and gp.affects_loss[:gp.position + 1].all()
    assert gp.ratio_subject == pytest.approx(dh[gp.subject] / dh[gp.position], rel=1e-9)
    if cell == "lstm":
        np.testing.assert_allclose(gp.dc[0], dc, rtol=1e-9, atol=1e-300)
        assert gp.ratio_subject_c == pytest.approx(dc[gp.subject] / dc[gp.position], rel=1e-9)
        assert "cell state" in gp.describe()
        data = gp.to_json()
        assert len(data["dc"][0]) == len(DEFAULT_SENTENCE)
    else:
        assert gp.dc is None and gp.to_json()["dc"] is None
    assert "the gradient at the subject, 23 steps back" in gp.describe()


def test_dc_in_float32_matches_finite_differences():
    """dL/dc_t from the hand-written BPTT against central differences on c_t, float64."""
    lm = make_tiny_lm("lstm", hidden=8, seed=5)
    text = "the cats that he saw were sad"
    gp = gradient_profile(lm, text, mode="verb")
    model = lm.model.double()
    ids = torch.as_tensor(lm.vocab.encode(text).ids)
    x = model.embed(ids[None]).detach()
    pos, t0 = gp.position, 6
    # h_t0 = o_t0 * tanh(c_t0): perturbing c_t0 changes h_t0 too, as the total derivative does.
    eps = 1e-6
    grad = np.zeros(8)
    with torch.no_grad():
        for j in range(8):
            e = torch.zeros(1, 8, dtype=torch.float64)
            e[0, j] = eps
            grad[j] = (_loss_c(model, x, ids, pos, t0, e) - _loss_c(model, x, ids, pos, t0, -e)) / (2 * eps)
    assert gp.dc[0, t0] == pytest.approx(np.linalg.norm(grad), rel=1e-4)


def _loss_c(model, x, ids, pos, t0, delta):
    """The verb's loss with c_t0 moved by delta (h_t0 recomputed from the moved cell)."""
    H = model.config.hidden
    h = torch.zeros(1, H, dtype=torch.float64)
    c = torch.zeros(1, H, dtype=torch.float64)
    for t in range(pos + 1):
        bag: dict = {}
        gi = x[:, t] @ model.layer_weights(0)[0].T + model.layer_weights(0)[2]
        h, c = model._recur(0, gi, (h, c), bag)
        if t == t0:
            c = c + delta
            h = bag["o"] * torch.tanh(c)
    return float(-torch.log_softmax(model.head(h)[0], -1)[ids[pos + 1]])


def test_verb_loss_needs_a_verb():
    lm = make_tiny_lm("rnn")
    with pytest.raises(VocabError, match="was' or 'were'"):
        gradient_profile(lm, "the girl reads the book", mode="verb")
    with pytest.raises(VocabError, match="was' or 'were'"):
        gradient_profile(lm, "the cats that we saw w", mode="verb")


# ------------------------------------------------------------- connectivity, aliasing
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_connectivity_matches_the_jacobian_of_the_step_wise_cell(cell):
    """||d logits_t / d x_k||_F from the fused module's batched backward passes against
    torch.func.jacrev of the step-wise path, float64."""
    from rnn_tui.engine.probes import connectivity

    lm = make_tiny_lm(cell, hidden=8, seed=6)
    lm.model.double()
    text = "the cats were sad"
    c = connectivity(lm, text)
    model = lm.model
    x = model.embed(torch.as_tensor(lm.vocab.encode(text).ids)[None]).detach()[0]
    jac = torch.func.jacrev(lambda xx: model.stepwise(inputs=xx[None]).logits[0])(x).detach()  # [T, V, T, E]
    ref = jac.norm(dim=(1, 3)).numpy()
    np.testing.assert_allclose(c.norms, np.tril(ref), rtol=1e-9, atol=1e-12)
    assert np.allclose(np.triu(ref, 1), 0.0) and c.row(len(text) - 1)[-1] == pytest.approx(1.0)


def test_aliasing_two_histories_that_end_alike():
    from rnn_tui.engine.agreement_text import alias_partner
    from rnn_tui.engine.probes import aliasing

    assert alias_partner(DEFAULT_SENTENCE) == "the man that she chased was happy"
    assert alias_partner(PLURAL) == "the men that she chased were happy"
    assert alias_partner("the man that we saw was sad") == "the dog that they met was sad"
    assert alias_partner("the girl reads the book") is None
    a = aliasing(make_tiny_lm("lstm"), DEFAULT_SENTENCE)
    assert a.partner == "the man that she chased was happy" and a.relative >= 0 and a.typical > 0
