"""The rnn-tui engine: pure PyTorch + numpy, no Textual.

Import submodules directly (`from rnn_tui.engine.probes import trace`). This package file
stays empty on purpose so `rnn_tui.engine.errors` can be imported before torch is.
"""
