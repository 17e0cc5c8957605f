"""Probes: what a trained recurrent network does with one piece of text.

Every probe takes a `LoadedModel` and a text, encodes the text with the model's vocabulary
(unknown tokens are skipped by default and reported in `unknown_message`), and returns a
frozen dataclass of numpy arrays with `to_json()`.

- `trace`: hidden states, gates, next-token predictions and losses, step by step.
- `gradient_profile`: |dL/dh_t|, |dL/dx_t| (and an LSTM's |dL/dc_t|) for every step, from ONE
  backward pass; its loss is the last token's, every token's, or the verb's number ("verb").
- `verb_agreement`: where a sentence's subject and verb slot are, P(was) against P(were) there.
- `jacobian_map`: ||d state_t / d state_k||_F for every pair k <= t of one layer: exact
  (float64 products, short texts) or, at real lengths, rows at a screen's resolution estimated
  with blocks of random probe vectors (`estimate.py`), the last row exact where it fits.
- `spectrum`: eigenvalues and spectral radius of each recurrent block of one layer.

Work is bounded: texts longer than `MAX_TRACE_TOKENS` (trace, gradients) or than what the
Jacobian products allow (`MAX_JACOBIAN_TOKENS`, `MAX_JACOBIAN_WORK` exact; `MAX_ESTIMATE_TOKENS`,
`MAX_ESTIMATE_WORK` estimated) raise ProbeLimitError,
whose message says how many tokens fit; `window=N` keeps only the last N tokens instead
(the probe then starts from a zero state at the first kept token).

`base` holds what the probes share (and the unit inspector, attribution and experiments build
on); `tracing` the step-by-step probes; `recurrence` the Jacobian products and the spectrum.
"""

from .agreement import TokenSlot, VerbAgreement, loss_mode_for, token_slot, verb_agreement
from .connectivity import MAX_CONNECTIVITY_TOKENS, Connectivity, connectivity
from .carriers import Aliasing, NumberCarriers, aliasing, number_carriers
from .base import MAX_TRACE_TOKENS, MAX_TRACE_VALUES, ProbeResult, encode_text, layer_index, to_jsonable, zero_state
from .recurrence import (LAST_ROW_WORK, MAIN_BLOCK, MAIN_REASON, MAP_PROBES, MAP_ROWS, MAX_ESTIMATE_TOKENS,
                         MAX_ESTIMATE_WORK, MAX_JACOBIAN_BYTES, MAX_JACOBIAN_TOKENS, MAX_JACOBIAN_WORK,
                         MAX_SPECTRUM_HIDDEN, JacobianMap, Spectrum, estimate_fit, jacobian_fit, jacobian_map,
                         spectrum)
from .tracing import MODE_WORDS, MODES, GradientProfile, Trace, gradient_profile, trace

__all__ = ["MAX_TRACE_TOKENS", "MAX_TRACE_VALUES", "ProbeResult", "encode_text", "layer_index", "to_jsonable",
           "zero_state", "MAIN_BLOCK", "MAIN_REASON", "MAX_JACOBIAN_BYTES", "MAX_JACOBIAN_TOKENS",
           "MAX_JACOBIAN_WORK", "MAX_SPECTRUM_HIDDEN", "JacobianMap", "Spectrum", "jacobian_fit", "jacobian_map",
           "spectrum", "LAST_ROW_WORK", "MAP_PROBES", "MAP_ROWS", "MAX_ESTIMATE_TOKENS", "MAX_ESTIMATE_WORK",
           "estimate_fit", "MODES", "MODE_WORDS", "GradientProfile", "Trace", "gradient_profile", "trace",
           "TokenSlot", "VerbAgreement", "token_slot", "verb_agreement", "loss_mode_for", "Aliasing", "aliasing", "NumberCarriers", "number_carriers", "Connectivity", "connectivity",
           "MAX_CONNECTIVITY_TOKENS"]
