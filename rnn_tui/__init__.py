"""rnn-tui: look inside recurrent neural networks (RNN, LSTM, GRU) while they read text and train.

`RunWriter` logs any PyTorch training loop into a run directory the app can watch::

    from rnn_tui import RunWriter

    with RunWriter("runs/mine", vocab=itos, level="char", steps=5000) as run:
        for step, (x, y) in enumerate(batches):      # or level="bpe", tokenizer="tokenizer.json"
            ...
            run.log(step, loss=loss.item(), grad_norm=gn, lr=lr)   # any other scalar by name too
            if step % 500 == 0:
                run.checkpoint(model, step=step)      # your nn.Embedding -> RNN/LSTM/GRU -> Linear

    # then, while it trains:  rnn-tui watch runs/mine   (or rnn-tui runs/mine)

A state_dict saved by your own script: ``rnn-tui import model.pt --vocab VOCAB --out RUN``.
help(rnn_tui.RunWriter) has every argument. The engine (trace, gradients, sampling,
checkpoints) is ``rnn_tui.engine``; its API is described in docs/engine_api.md.

RunWriter is imported on first use (it imports torch; `import rnn_tui` itself does not).
"""

__version__ = "0.1.0"
__all__ = ["RunWriter"]


def __getattr__(name: str):
    if name == "RunWriter":
        from .engine.run_writer import RunWriter

        return RunWriter
    raise AttributeError(f"module 'rnn_tui' has no attribute {name!r}")
