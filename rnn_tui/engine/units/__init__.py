"""Unit inspector: which units fire together, and where else in a corpus they do.

What LSTMVis (Strobelt et al. 2017) does, as plain numpy/torch for a terminal front end:

- `encode_corpus_states` (`states`): run a model over a whole corpus once and keep one value
  (hidden state, LSTM cell state or a gate) of one layer for every token, quantised to uint8.
- `select_units` (`search`): the units that stay at or above a threshold across a span of a
  sentence (optionally below it just before and just after the span).
- `find_matches` (`search`): every place in the corpus where the same units are all on
  together for at least as long, ranked LSTMVis-style, with a decoded snippet around each.

Which inputs matter for a prediction is `rnn_tui.engine.attribution`.
"""

from .search import Match, UnitMatches, find_matches, select_units, trace_values
from .states import (DEFAULT_CHUNK, DEFAULT_STREAMS, DEFAULT_WARMUP, MAX_CORPUS_BYTES, STORAGES, CorpusStates,
                     encode_corpus_states, model_fingerprint, text_fingerprint, values_for)

__all__ = ["Match", "UnitMatches", "find_matches", "select_units", "trace_values", "DEFAULT_CHUNK",
           "DEFAULT_STREAMS", "DEFAULT_WARMUP", "MAX_CORPUS_BYTES", "STORAGES", "CorpusStates",
           "encode_corpus_states", "model_fingerprint", "text_fingerprint", "values_for"]
