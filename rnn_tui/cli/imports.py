"""`rnn-tui import`: a state_dict made elsewhere (word_language_model, a char-RNN, your own
Embedding + nn.RNN/LSTM/GRU + Linear) as an rnn-tui run directory the app and probes read."""

from __future__ import annotations

from pathlib import Path

from .output import warn


def cmd_import(args) -> int:
    from ..engine.checkpoint import save_checkpoint
    from ..engine.errors import ConfigError
    from ..engine.external import from_state_dict, read_state_dict, read_vocab, vocab_size_of
    from ..runs.layout import CONFIG_NAME

    out = Path(args.out)
    if (out / CONFIG_NAME).exists():
        raise ConfigError(f"{out} already holds a model: give another --out")
    tensors = read_state_dict(args.state_dict)
    size = vocab_size_of(tensors)
    tokens = read_vocab(args.vocab, size, args.level)
    mapped = from_state_dict(tensors, tokens, args.level, nonlinearity=args.nonlinearity,
                             embedding=args.embedding, head=args.head)
    warn(mapped.note_line())
    lm = mapped.lm
    from ..engine.corpus.files import source_of

    text = Path(args.corpus).expanduser() if args.corpus else None
    meta = {"corpus": args.corpus or Path(args.state_dict).name, "level": args.level,
            "corpus_source": source_of(text) if text is not None and text.is_file() else None,
            "imported": {**lm.meta["imported"], "from": str(Path(args.state_dict).resolve())}}
    save_checkpoint(out, lm.model, lm.vocab, meta)
    c = lm.config
    layers = f" x{c.layers}" if c.layers > 1 else ""
    print(f"imported {c.cell} H={c.hidden}{layers} ({size} tokens, {args.level} level) to {out}: "
          f"rnn-tui {out}  ·  rnn-tui trace {out} 'some text'")
    return 0
