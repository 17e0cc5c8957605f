"""Experiments: named presets that train and probe small networks on the real engine and
return frozen results of numpy arrays.

    from rnn_tui.engine.experiments import EXPERIMENTS, get_experiment
    exp = get_experiment("parity")
    result = exp.run(exp.settings(quick=True), stop=event, progress=lambda f, msg: ...)
    result.summary()      # readable text
    result.to_json()      # plain dict (NaN/inf -> None)

Every experiment has a settings dataclass (frozen, with defaults that run on a CPU in
seconds), `quick` overrides for a smoke run, and a `run(settings, stop, progress)` that
returns early (with `stopped=True` and NaN where nothing was measured) once `stop` is set.
`progress(fraction, message)` is called from the running thread. Runs are deterministic
given the settings' seed; `Experiment.run` limits torch to one CPU thread by default (these
models are tiny: more threads only add contention, and one thread is bit-reproducible).

One module per experiment holds its settings, its result (an `ExperimentResult` with its own
`table()` and `findings()`) and its run, registered with `@experiment` (see `base`). Adding
one is a new module here and its line below (the import order is the order of `EXPERIMENTS`),
plus its views in `rnn_tui/screens/lab/`.
"""

from . import (  # noqa: F401 - each registers itself, in this order
    parity, init_schemes, clipping, tbptt, zog, temperature, agreement, memory_horizon, spectral,
    elman, capacity, saturation, connectivity, failure_modes,
)
from .agreement import AgreementModels, AgreementResult, AgreementSettings, train_agreement_models
from .agreement_tools import (DEFAULT_DISTRACTORS, AgreementCurve, agreement_corpus, agreement_curve,
                              balanced_agreement_corpus, continuation_logprobs, flip_number, flip_subject,
                              longest_solved, recurrent_parameters)
from .base import (EXPERIMENTS, PROBE_TEXT, Experiment, ExperimentResult, Progress, RunContext, experiment,
                   get_experiment, run_experiment)
from .capacity import CapacityResult, CapacitySettings, bits_recalled, symbol_batch
from .clipping import ClippingResult, ClippingSettings, count_spikes
from .connectivity import ConnectivityResult, ConnectivitySettings
from .elman import ElmanResult, ElmanSettings, group_name, leaves_of, ward_linkage
from .failure_modes import FailureResult, FailureSettings, curse_of_memory
from .init_schemes import InitResult, InitSettings
from .memory_horizon import MemoryResult, MemorySettings
from .parity import ParityResult, ParitySettings, screen_starts
from .saturation import SaturationResult, SaturationSettings
from .spectral import SpectralResult, SpectralSettings
from .tbptt import TbpttResult, TbpttSettings
from .temperature import STAT_NAMES, TemperatureResult, TemperatureSettings, grammatical, text_statistics
from .zog import ZogResult, ZogSettings

__all__ = ["EXPERIMENTS", "Experiment", "ExperimentResult", "RunContext", "Progress", "experiment",
           "get_experiment", "run_experiment", "PROBE_TEXT",
           "agreement_corpus", "agreement_curve", "AgreementModels", "train_agreement_models", "AgreementCurve",
           "balanced_agreement_corpus", "flip_subject", "flip_number", "continuation_logprobs",
           "longest_solved", "recurrent_parameters", "DEFAULT_DISTRACTORS", "count_spikes",
           "text_statistics", "grammatical", "STAT_NAMES", "screen_starts",
           "ParitySettings", "ParityResult", "InitSettings", "InitResult", "ClippingSettings", "ClippingResult",
           "TbpttSettings", "TbpttResult", "ZogSettings", "ZogResult", "TemperatureSettings",
           "TemperatureResult", "AgreementSettings", "AgreementResult", "MemorySettings", "MemoryResult",
           "SpectralSettings", "SpectralResult", "ElmanSettings", "ElmanResult", "ward_linkage", "leaves_of",
           "group_name", "CapacitySettings", "CapacityResult", "bits_recalled", "symbol_batch",
           "SaturationSettings", "SaturationResult", "ConnectivitySettings", "ConnectivityResult",
           "FailureSettings", "FailureResult", "curse_of_memory"]
