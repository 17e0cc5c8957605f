"""Corpora and vocabularies: text files and three bundled toy tasks, tokenised to id streams.

- `vocab`: the vocabulary (characters or words), encoding with an unknown-token policy.
- `base`: the Corpus record (training and validation ids) and their split.
- `bundled`: the toy corpora generated from a seed: grammar, parity, agreement.
- `files`: UTF-8 text files, and the cache of their encoding (memory-mapped on a hit).
- `load`: `load_corpus(spec)`, a bundled name or a file path.
- `for_model`: `corpus_for_model(lm)`, the text a model was trained on, found again (never a stand-in).
- `batches`: `BatchStream`, the windows truncated BPTT trains on.
"""

from .base import Corpus
from .batches import BatchStream
from .bundled import (AGREEMENT_MAX_DISTRACTOR, AGREEMENT_SIZE, BUNDLED_CORPORA, DEFAULT_SENTENCE, GRAMMAR_LEXICON,
                      GRAMMAR_SIZE, GRAMMAR_TEMPLATES, PARITY_MAX_BITS, PARITY_MIN_BITS, PARITY_SIZE, TOY_ALPHABET,
                      AgreementItem, agreement_categories, agreement_items, grammar_categories, grammar_sentences,
                      parity_stream)
from .files import CACHE_ENV, CACHE_VERSION, MAX_FILE_BYTES, MAX_MEMORY_FILE_BYTES, default_cache_dir
from .for_model import ModelCorpus, corpus_for_model
from .load import load_corpus
from .vocab import LEVELS, ON_UNKNOWN, UNK, Encoded, Vocab, word_spans

__all__ = ["Corpus", "BatchStream", "BUNDLED_CORPORA", "TOY_ALPHABET", "GRAMMAR_LEXICON", "GRAMMAR_TEMPLATES",
           "GRAMMAR_SIZE", "DEFAULT_SENTENCE", "PARITY_SIZE", "PARITY_MIN_BITS", "PARITY_MAX_BITS",
           "AGREEMENT_SIZE", "AGREEMENT_MAX_DISTRACTOR", "AgreementItem", "agreement_categories",
           "agreement_items", "grammar_categories", "grammar_sentences", "parity_stream", "CACHE_ENV",
           "CACHE_VERSION", "MAX_FILE_BYTES", "MAX_MEMORY_FILE_BYTES", "default_cache_dir", "load_corpus",
           "ModelCorpus", "corpus_for_model", "LEVELS", "ON_UNKNOWN", "UNK",
           "Encoded", "Vocab", "word_spans"]
