"""rnn-tui: look inside recurrent neural networks while they read and while they train."""

__version__ = "0.1.0"
