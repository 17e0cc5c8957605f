"""Corpora larger than memory: the file read and encoded a chunk at a time (corpus/stream.py),
and BatchStream serving windows from the stored integer type without an int64 copy.

The streaming encoders must give exactly what Vocab.build + encode give for the whole text,
whatever the chunk size; memory must follow the batch, not the corpus (checked by what numpy
allocates, loosely: the RSS figures for a 1 GB corpus are benchmarks/bench_corpus_memory.py's).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from rnn_tui.engine.corpus import BatchStream, Vocab, load_corpus
from rnn_tui.engine.corpus import files as files_mod
from rnn_tui.engine.corpus.stream import ArraySink, encode_chars, encode_words, text_chunks
from rnn_tui.engine.errors import CorpusError

TRICKY = ("Hello, wörld! The_cat's 12.5% — “quoted” naïve café\r\nend… 你好世界 a\tb\r\n"
          "\ufeffmid-BOM x_1 __init__ supercalifragilisticexpialidocious " + "z" * 70 + " ab.cd;;e\r\n"
          "abcdefghij abcdefghik abcdefghijklmnop abcdefghijklmnoq 123456789012345678 Ünïcödé ÆØÅ\n")


def _reference(text: str, level: str):
    vocab = Vocab.build(text, level)
    ids, _, _ = vocab._ids(text, "unk")
    return vocab, ids


def _pieces(path, chunk, level):
    return lambda: text_chunks(path, chunk_bytes=chunk, cut_at_space=level == "word")


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
@pytest.mark.parametrize("level", ["char", "word"])
def test_streaming_encoders_equal_the_whole_text_path(tmp_path, chunk, level):
    raw = (TRICKY * 9).encode("utf-8")
    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbf" + raw)  # a BOM at the start is not text
    text = raw.decode("utf-8").replace("\r\n", "\n")
    pieces = list(_pieces(path, chunk, level)())
    assert "".join(pieces) == text  # multi-byte characters and CRLF cut by chunks come out whole
    if level == "word":
        assert all(not pieces[i + 1][:1] or pieces[i + 1][:1].isspace() for i in range(len(pieces) - 1))
    ref_vocab, ref_ids = _reference(text, level)
    if level == "char":
        vocab, sink, n, examples = encode_chars(_pieces(path, chunk, level), None, lambda n, dt: ArraySink(n, dt))
        ids = sink.result()
    else:
        prov = ArraySink()
        vocab, remap, n, examples = encode_words(_pieces(path, chunk, level), None, prov)
        ids = remap[prov.result()]
    assert vocab == ref_vocab and n == len(ref_ids)
    np.testing.assert_array_equal(ids, ref_ids)
    assert ids.dtype == (np.uint8 if len(vocab) <= 256 else np.uint16)
    assert examples and examples[0].startswith("Hello, wörld!")


def test_word_vocabulary_ties_and_cutoff_follow_counter_most_common(tmp_path):
    words = [f"w{i}" for i in range(60)]
    rng = np.random.default_rng(0)
    text = " ".join(rng.choice(words, size=3000).tolist()) + " ."
    path = tmp_path / "w.txt"
    path.write_text(text)
    prov = ArraySink()
    vocab, remap, n, _ = encode_words(_pieces(path, 100, "word"), None, prov, max_words=17)
    ref = Vocab.build(text, "word", max_words=17)
    assert vocab == ref
    np.testing.assert_array_equal(remap[prov.result()], ref._ids(text, "unk")[0])


@pytest.mark.parametrize("chunk", [5, 1 << 20])
def test_bad_bytes_are_reported_at_their_file_offset_in_any_chunk(tmp_path, chunk):
    path = tmp_path / "c.txt"
    path.write_bytes(("héllo wörld " * 3).encode() + b"ab\xffcd")
    offset = len(("héllo wörld " * 3).encode()) + 2
    with pytest.raises(CorpusError, match=rf"byte 0xff at byte offset {offset} cannot be decoded"):
        list(text_chunks(path, chunk_bytes=chunk))
    path.write_bytes(b"abc def" * 3 + b"\x00")
    with pytest.raises(CorpusError, match=r"NUL byte at byte offset 21"):
        list(text_chunks(path, chunk_bytes=4))
    path.write_bytes(b" \n\t " * 10)
    with pytest.raises(CorpusError, match="contains only whitespace"):
        list(text_chunks(path, chunk_bytes=4))
    path.write_bytes("é".encode()[:1])  # a character cut off by the end of the file
    with pytest.raises(CorpusError, match="byte 0xc3 at byte offset 0"):
        list(text_chunks(path, chunk_bytes=4))


def test_cached_and_uncached_loads_agree_with_small_chunks(tmp_path, monkeypatch):
    import rnn_tui.engine.corpus.stream as stream

    monkeypatch.setattr(stream, "CHUNK_BYTES", 97)  # many chunks even for a small file
    path = tmp_path / "t.txt"
    path.write_text(TRICKY * 30, encoding="utf-8")
    text = (TRICKY * 30).replace("\r\n", "\n")
    for level in ("char", "word"):
        vocab, ids = _reference(text, level)
        for corpus in (load_corpus(str(path), level), load_corpus(str(path), level, cache_dir=tmp_path / "c")):
            assert corpus.vocab == vocab
            np.testing.assert_array_equal(np.concatenate([corpus.train, corpus.val]), ids)
        assert load_corpus(str(path), level, size=50, cache_dir=tmp_path / "c").train.shape[0] == 45


def test_large_word_corpora_spill_provisional_ids_to_a_scratch_file(tmp_path, monkeypatch):
    import rnn_tui.engine.corpus.stream as stream

    monkeypatch.setattr(stream, "CHUNK_BYTES", 257)
    monkeypatch.setattr(files_mod, "_PROVISIONAL_IN_MEMORY", 0)  # as for a file of many GB
    monkeypatch.setattr(files_mod, "_REMAP_CHUNK", 100)
    path = tmp_path / "w.txt"
    text = ("the cat sat on the mat, and the dog ran. " * 40 + TRICKY) * 3
    path.write_text(text, encoding="utf-8")
    vocab, ids = _reference(text.replace("\r\n", "\n"), "word")
    corpus = load_corpus(str(path), "word", cache_dir=tmp_path / "c")
    assert corpus.vocab == vocab and isinstance(corpus.train, np.memmap)
    np.testing.assert_array_equal(np.concatenate([corpus.train, corpus.val]), ids)
    assert not list((tmp_path / "c").glob(".*provisional"))  # the scratch file is gone


def test_the_file_limit_is_what_the_cache_allows(tmp_path, monkeypatch):
    assert files_mod.MAX_FILE_BYTES >= 4 * 1024**3  # at least 4 GB of text with the cache
    path = tmp_path / "t.txt"
    path.write_text("abc def " * 100)
    monkeypatch.setattr(files_mod, "MAX_MEMORY_FILE_BYTES", 100)
    with pytest.raises(CorpusError, match="without the encoding cache: use the encoding cache"):
        load_corpus(str(path))
    assert len(load_corpus(str(path), cache_dir=tmp_path / "c").train) == 720  # the cache has no such limit


def test_a_failed_cache_write_falls_back_to_memory_and_says_so(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("the cat sat. " * 50)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")  # the cache directory cannot be made here
    corpus = load_corpus(str(path), cache_dir=blocker / "cache")
    assert "encoding not cached" in corpus.description
    plain = load_corpus(str(path))
    np.testing.assert_array_equal(np.concatenate([corpus.train, corpus.val]),
                                  np.concatenate([plain.train, plain.val]))


# ------------------------------------------------------------------------ BatchStream
def _reference_windows(ids: np.ndarray, batch: int, seq_len: int, n: int):
    """The old BatchStream: the whole stream as int64, rows cut contiguously."""
    ids = np.asarray(ids, dtype=np.int64)
    row_len = len(ids) // batch
    rows = ids[: batch * row_len].reshape(batch, row_len)
    per_epoch = (row_len - 1) // seq_len
    for k in range(n):
        s = (k % per_epoch) * seq_len
        yield rows[:, s:s + seq_len], rows[:, s + 1:s + seq_len + 1]


def test_batch_stream_keeps_the_stored_type_and_serves_the_same_windows(tmp_path):
    path = tmp_path / "big.txt"
    rng = np.random.default_rng(1)
    path.write_bytes(bytes(rng.choice(list(b"abcdefgh ."), size=300_000).tolist()))
    corpus = load_corpus(str(path), cache_dir=tmp_path / "c")
    train = corpus.train
    assert isinstance(train, np.memmap) and train.dtype == np.uint8
    stream = BatchStream(train, None, batch=8, seq_len=50)
    assert stream.stored_dtype == np.uint8 and np.shares_memory(stream._rows, train)  # no copy
    windows = stream.windows_per_epoch
    for (x, y), (rx, ry) in zip((stream.next() for _ in range(windows + 3)),
                                _reference_windows(train, 8, 50, windows + 3)):
        assert x.dtype == torch.int64 and x.shape == (8, 50) and x.is_contiguous()
        np.testing.assert_array_equal(x.numpy(), rx)
        np.testing.assert_array_equal(y.numpy(), ry)
    assert stream.epoch == 1 and stream.window == 3


def test_batch_stream_with_targets_in_a_small_type():
    ids = np.arange(1000, dtype=np.uint16) % 7
    targets = (np.arange(1000, dtype=np.uint8) % 2)
    stream = BatchStream(ids, targets, batch=4, seq_len=10)
    x, y = stream.next()
    assert x.dtype == y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), ids.astype(np.int64).reshape(4, 250)[:, :10])
    np.testing.assert_array_equal(y.numpy(), targets.astype(np.int64).reshape(4, 250)[:, :10])


def test_batch_stream_memory_grows_with_the_batch_not_the_corpus(tmp_path):
    """A 64 MB uint8 memory map: building the stream and serving windows allocates about one
    window of int64, never a copy of the corpus (numpy's allocations, traced)."""
    n = 64 * 2**20
    data = np.lib.format.open_memmap(tmp_path / "ids.npy", mode="w+", dtype=np.uint8, shape=(n,))
    data[:] = 3
    data.flush()
    del data
    ids = np.load(tmp_path / "ids.npy", mmap_mode="r")
    tracemalloc.start()
    try:
        stream = BatchStream(ids, None, batch=64, seq_len=128)
        for _ in range(20):
            x, y = stream.next()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    window = 64 * 129 * 8
    assert peak < 8 * window + (1 << 20), peak  # a few windows' worth, not the corpus (64 MB)
    assert int(x.sum()) == 64 * 128 * 3


def test_batch_stream_gives_mapped_pages_back(tmp_path, monkeypatch):
    import rnn_tui.engine.corpus.batches as batches

    monkeypatch.setattr(batches, "_RELEASE_BYTES", 4096)
    np.save(tmp_path / "ids.npy", (np.arange(200_000) % 11).astype(np.uint8))
    ids = np.load(tmp_path / "ids.npy", mmap_mode="r")
    stream = BatchStream(ids[:150_000], None, batch=4, seq_len=100)
    assert len(stream._mapped) == 1 and stream._release_every == 4096 // (4 * 101)
    calls = []
    real = stream._release
    monkeypatch.setattr(stream, "_release", lambda: calls.append(1) or real())
    first = [stream.next() for _ in range(30)]
    assert len(calls) == 30 // stream._release_every
    stream.reset()
    again = [stream.next() for _ in range(30)]  # the pages come back from the file, the same
    for (x, y), (x2, y2) in zip(first, again):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    copy_on_write = np.load(tmp_path / "ids.npy", mmap_mode="c")
    assert BatchStream(copy_on_write, None, batch=4, seq_len=100)._mapped == []  # its edits would be lost
