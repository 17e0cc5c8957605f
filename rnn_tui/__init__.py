"""rnn-tui: look inside recurrent neural networks (RNN, LSTM, GRU) while they read text and train.

`RunWriter` logs any PyTorch training loop into a run directory the app can watch::

    from rnn_tui import RunWriter

It is imported on first use (it imports torch; `import rnn_tui` itself does not).
"""

__version__ = "0.1.0"
__all__ = ["RunWriter"]


def __getattr__(name: str):
    if name == "RunWriter":
        from .engine.run_writer import RunWriter

        return RunWriter
    raise AttributeError(f"module 'rnn_tui' has no attribute {name!r}")
