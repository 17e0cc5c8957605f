"""What a model and a training run are made of: choices, defaults and help, with no torch import.

`ModelConfig` fixes a network's shape; `TrainConfig` a training run. Every field of
`TrainConfig` carries its help text, its choices and whether the training form shows it
(`option()` below), so that the command line's `rnn-tui train` flags and the TUI's training
form are both generated from this one place::

    for opt in train_options():          # every TrainConfig field, in order
        opt.name, opt.kind, opt.default, opt.help, opt.choices, opt.form

A default lives here and nowhere else. The CLI and the app import this module before torch
is loaded (it is cheap), the engine imports it for validation.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError, quote

CELLS = ("rnn", "lstm", "gru")
CELL_NAMES = {"rnn": "vanilla RNN", "lstm": "LSTM", "gru": "GRU"}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # weight blocks per layer: the tanh, i f g o, r z n
NONLINEARITIES = ("tanh", "relu")
INITS = ("default", "orthogonal", "xavier", "identity", "spectral", "echo")
INIT_HELP = {
    "default": "torch's own uniform(-1/sqrt(H), 1/sqrt(H))",
    "orthogonal": "orthogonal recurrent matrix: every eigenvalue on the unit circle",
    "xavier": "Xavier/Glorot uniform for every weight matrix",
    "identity": "IRNN: recurrent matrix = identity (ReLU for the vanilla cell)",
    "spectral": "random recurrent matrix scaled to --spectral-radius (default 1.0)",
    "echo": "echo-state: random recurrent matrix scaled to the spectral radius (default 0.9), frozen",
}
LEVELS = ("char", "word", "bpe")
OPTIMIZERS = ("adam", "adamw", "sgd")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
BUNDLED_CORPORA = ("grammar", "parity", "agreement")
BUNDLED_MODELS = ("rnn", "lstm", "gru")
# Names of the H x H blocks stacked in torch's weight_hh_l{k}, in torch's order.
GATE_BLOCKS = {"rnn": ("W_hh",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
# Internals the step-wise model exposes per cell, stacked [L, B, T, H].
INTERNALS = {"rnn": (), "lstm": ("i", "f", "g", "o", "c"), "gru": ("r", "z", "n")}
MAX_WIDTH = 16384  # hidden and embed
MAX_LAYERS = 32
MAX_VOCAB = 1 << 20  # tokens (a word-level vocabulary keeps 20,000 by default)
MAX_SEED = 2**64 - 1  # torch's generators take seeds up to this
MAX_INT = 2**31 - 1  # the largest step count, batch, window... a setting may ask for
# Longest text a trace or gradient profile takes (one Python step per token); the TUI's sentence.
MAX_TRACE_TOKENS = 4096


def _whole(name: str, value: Any, low: int = 1, high: int | None = None) -> None:
    """A whole number >= low (and <= high); a bool is not a number here (JSON's true is not 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        kind = "a positive whole number" if low == 1 else f"a whole number >= {low}"
        raise ConfigError(f"{name} must be {kind}, got {quote(value)}")
    if high is not None and value > high:
        raise ConfigError(f"{name} must be at most {high:,}, got {quote(value)}")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a network: embedding -> `layers` recurrent cells -> linear head."""

    vocab_size: int
    cell: str = "lstm"
    embed: int = 32
    hidden: int = 64
    layers: int = 1
    nonlinearity: str = "auto"  # vanilla cell only; auto = relu for IRNN, else tanh
    init: str = "default"
    spectral_radius: float | None = None  # for init "spectral" and "echo"
    dropout: float = 0.0  # between stacked layers, training only

    def __post_init__(self) -> None:
        cell = str(self.cell).lower()
        object.__setattr__(self, "cell", cell)
        if cell not in CELLS:
            raise ConfigError(f"unknown cell {quote(self.cell)}: choose one of {', '.join(CELLS)}")
        if self.init not in INITS:
            raise ConfigError(f"unknown init {quote(self.init)}: choose one of {', '.join(INITS)}")
        if self.nonlinearity == "auto":
            auto = "relu" if (cell == "rnn" and self.init == "identity") else "tanh"
            object.__setattr__(self, "nonlinearity", auto)
        if self.nonlinearity not in NONLINEARITIES:
            raise ConfigError(
                f"unknown nonlinearity {quote(self.nonlinearity)}: choose one of {', '.join(NONLINEARITIES)}"
            )
        for name in ("vocab_size", "embed", "hidden", "layers"):
            _whole(name, getattr(self, name))
        if self.hidden > MAX_WIDTH or self.embed > MAX_WIDTH or self.layers > MAX_LAYERS:
            raise ConfigError(f"model too large: hidden and embed are capped at {MAX_WIDTH}, "
                              f"layers at {MAX_LAYERS}")
        if self.vocab_size > MAX_VOCAB:
            raise ConfigError(f"vocabulary too large: {self.vocab_size:,} tokens, at most {MAX_VOCAB:,}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.spectral_radius is not None and not (0.0 < self.spectral_radius < 100.0):
            raise ConfigError(f"spectral radius must be in (0, 100), got {self.spectral_radius}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"model config has unknown keys: {', '.join(unknown)}")
        return cls(**data)

    def parameter_count(self) -> int:
        """Every parameter: embedding + recurrent stack + head (weights and biases)."""
        gates = GATES[self.cell]
        h, e, v = self.hidden, self.embed, self.vocab_size
        rec = 0
        for layer in range(self.layers):
            inp = e if layer == 0 else h
            rec += gates * (h * inp + h * h + 2 * h)
        return v * e + rec + h * v + v


# ------------------------------------------------------------------ training options
def option(default: Any, help: str, *, choices: tuple | None = None, form: str | None = None,
           flag: bool = True, low: float | None = None, high: int | None = None,
           resumable: bool = False, optional: bool = False, shown_with: tuple[str, str] | None = None) -> Any:
    """A TrainConfig field with what the CLI and the form need to know about it.

    ``form``: the label in the TUI's training form (None: not in the form); ``flag``: whether
    ``rnn-tui train`` has ``--name``; ``low``: the smallest value (ints: inclusive; floats:
    see the field's validation); ``high``: an int's largest (default MAX_INT); ``resumable``:
    ``--resume`` may change it; ``optional``: None is a value (``clip``: None or 0 is off);
    ``shown_with``: (field, value): the form shows the row, and the setting applies, only while
    that field has that value (the BPE settings, with level bpe)."""
    meta = {"help": help, "choices": choices, "form": form, "flag": flag, "low": low, "high": high,
            "resumable": resumable, "optional": optional, "shown_with": shown_with}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Option:
    """One training setting, as the CLI and the form see it."""

    name: str
    kind: str  # "int", "float", "str", "bool" or "choice"
    default: Any
    help: str
    choices: tuple | None = None
    form: str | None = None  # label in the training form
    flag: bool = True
    low: float | None = None
    high: int | None = None  # ints: the largest value
    resumable: bool = False
    optional: bool = False
    shown_with: tuple[str, str] | None = None

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_text(self) -> str:
        if self.default is None:
            return "off" if self.optional else "none"
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return str(self.default)

    def parse(self, text: Any) -> Any:
        """Text typed in the form (or read from a file) -> the field's value.

        Raises ConfigError that names the field by its form label."""
        label = self.form or self.name
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        text = text.strip()
        if self.kind == "int":
            try:
                return int(text)
            except ValueError:
                raise ConfigError(f"{label}: expected a whole number, got {quote(text)}") from None
        if self.kind == "float":
            if self.optional and text.lower() in ("", "off", "none"):
                return None
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"{label}: expected a number, got {quote(text)}") from None
            if not math.isfinite(value):
                raise ConfigError(f"{label}: expected a finite number, got {quote(text)}")
            return value
        if self.kind == "bool":
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"{label}: expected on or off, got {quote(text)}")
        if not text:
            if self.optional:
                return None
            raise ConfigError(f"{label}: needs a value")
        if self.kind == "choice" and text.lower() not in self.choices:
            raise ConfigError(f"{label}: choose one of {', '.join(self.choices)}, got {quote(text)}")
        return text.lower() if self.kind == "choice" else text


@dataclass(frozen=True)
class TrainConfig:
    """A training run: the corpus, the model's shape, the optimizer and the loop's cadence."""

    corpus: str = option("grammar", "bundled corpus (grammar, parity, agreement) or a UTF-8 text file",
                         form="corpus", flag=False)
    level: str = option("char", "char, word or bpe (subword) tokens", choices=LEVELS, form="level")
    bpe_vocab: int = option(1000, "the subword vocabulary size a BPE tokenizer is trained to (every character of the "
                            "text is kept, which can make it larger; --level bpe)",
                            low=8, high=MAX_VOCAB, form="vocab", shown_with=("level", "bpe"))
    tokenizer: str | None = option(None, "a Hugging Face tokenizer.json to use instead of training one "
                                   "(subword pieces: --level bpe unless given)", optional=True, form="tokens", shown_with=("level", "bpe"))
    cell: str = option("lstm", "the recurrent cell", choices=CELLS, form="cell")
    embed: int = option(32, "embedding width", low=1)
    hidden: int = option(64, "hidden units per layer", form="hidden", low=1)
    layers: int = option(1, "stacked recurrent layers", form="layers", low=1)
    nonlinearity: str = option("auto", "tanh or relu (vanilla cell; auto: relu for --init identity)",
                               choices=("auto",) + NONLINEARITIES)
    init: str = option("default", "how the weights start: " + ", ".join(INITS), choices=INITS, form="init")
    spectral_radius: float | None = option(
        None, "the recurrent matrix's spectral radius for --init spectral or echo", optional=True)
    dropout: float = option(0.0, "dropout between stacked layers, 0 <= p < 1 (needs --layers 2 or more)",
                            low=0.0)
    optimizer: str = option("adam", "the optimizer", choices=OPTIMIZERS, form="optim")
    lr: float = option(3e-3, "learning rate", form="lr")
    weight_decay: float = option(0.0, "weight decay", low=0.0)
    momentum: float = option(0.0, "momentum (sgd only)", low=0.0)
    seq_len: int = option(64, "tokens per truncated-BPTT window", form="seq len", low=1)
    batch: int = option(32, "sequences per step (with --ddp the global batch, split evenly over the "
                        "processes)", low=1)
    clip: float | None = option(1.0, "clip the global grad norm (0: off)", form="clip", optional=True)
    steps: int = option(1000, "total steps; with --resume a larger number extends the run",
                        form="steps", low=0, resumable=True)
    eval_every: int = option(100, "validate every N steps and at the end (0: at the end only)",
                             low=0, resumable=True)
    eval_batches: int = option(8, "batches per validation", low=1, resumable=True, flag=False)
    seed: int = option(0, "the same seed gives the same run", low=0, high=MAX_SEED)
    device: str = option("auto", "auto, cpu, cuda or mps", resumable=True)
    log_every: int = option(1, "read the loss back from the device and log it every N steps (on a GPU "
                            "10-100 saves a host sync per step)", low=1, resumable=True)
    snapshot_every: int = option(50, "keep a copy of good weights this often, for the NaN guard",
                                 low=1, resumable=True, flag=False)
    save_every: int = option(500, "write the latest checkpoint to the run directory every N steps "
                             "(0: only at the end)", low=0, resumable=True)
    amp: bool = option(False, "bfloat16 autocast (CUDA; runs on the CPU too, usually slower there)",
                       resumable=True)

    def __post_init__(self) -> None:
        def choose(name, options):
            value = getattr(self, name)
            value = value.lower() if isinstance(value, str) else value
            if value not in options:
                raise ConfigError(f"unknown {name} {quote(getattr(self, name))}: choose one of {', '.join(options)}")
            object.__setattr__(self, name, value)

        def number(name, low, high=math.inf, low_open=False):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {quote(value)}")
            if (value <= low if low_open else value < low) or value >= high:
                bound = f"> {low}" if low_open else f">= {low}"
                if high != math.inf:
                    bound += f" and < {high}"
                raise ConfigError(f"{name} must be {bound}, got {value}")
            object.__setattr__(self, name, float(value))

        if not isinstance(self.corpus, str) or not self.corpus.strip():
            raise ConfigError("corpus must name a bundled corpus or a text file")
        for opt in train_options():
            if opt.kind == "choice":
                choose(opt.name, opt.choices)
            elif opt.kind == "int":
                _whole(opt.name, getattr(self, opt.name), int(opt.low or 0), opt.high)
        if not isinstance(self.amp, bool):
            raise ConfigError(f"amp must be true or false, got {quote(self.amp)}")
        number("lr", 0.0, low_open=True)
        number("dropout", 0.0, 1.0)
        number("weight_decay", 0.0)
        number("momentum", 0.0, 1.0)
        if self.clip is not None:
            number("clip", 0.0)
        if self.spectral_radius is not None:
            number("spectral_radius", 0.0, 100.0, low_open=True)
        if not isinstance(self.device, str) or self.device.split(":", 1)[0].lower() not in DEVICE_CHOICES:
            raise ConfigError(f"unknown device {quote(self.device)}: choose one of {', '.join(DEVICE_CHOICES)}")
        if self.tokenizer is not None and (not isinstance(self.tokenizer, str) or not self.tokenizer.strip()):
            raise ConfigError(f"tokenizer must name a tokenizer.json file, got {quote(self.tokenizer)}")
        if self.tokenizer is not None and self.level != "bpe":
            raise ConfigError(f"a tokenizer file goes with --level bpe (level is {self.level})")
        if self.momentum and self.optimizer != "sgd":
            raise ConfigError(f"momentum applies to the sgd optimizer only (optimizer is {self.optimizer})")

    @property
    def clip_on(self) -> bool:
        return bool(self.clip)

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size=vocab_size, cell=self.cell, embed=self.embed, hidden=self.hidden,
                           layers=self.layers, nonlinearity=self.nonlinearity, init=self.init,
                           spectral_radius=self.spectral_radius, dropout=self.dropout)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"training config has unknown keys: {', '.join(unknown)}")
        return cls(**data)


def _kind(f) -> str:
    if f.metadata.get("choices"):
        return "choice"
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    for name in ("bool", "int", "float"):
        if t.startswith(name):
            return name
    return "str"


_OPTIONS: tuple[Option, ...] | None = None


def train_options() -> tuple[Option, ...]:
    """Every TrainConfig field as an Option, in the dataclass's order."""
    global _OPTIONS
    if _OPTIONS is None:
        out = []
        for f in fields(TrainConfig):
            m = f.metadata
            default = f.default if f.default is not MISSING else None
            kind = _kind(f)
            high = m["high"] if m["high"] is not None else (MAX_INT if kind == "int" else None)
            out.append(Option(name=f.name, kind=kind, default=default, help=m["help"],
                              choices=m["choices"], form=m["form"], flag=m["flag"], low=m["low"],
                              high=high, resumable=m["resumable"], optional=m["optional"],
                              shown_with=m["shown_with"]))
        _OPTIONS = tuple(out)
    return _OPTIONS


def train_option(name: str) -> Option:
    for opt in train_options():
        if opt.name == name:
            return opt
    raise KeyError(name)


def absolute_paths(settings: dict[str, Any]) -> dict[str, Any]:
    """TrainConfig settings with a corpus or tokenizer that names an existing file given as an
    absolute path: the run's config.json (and `--resume` from any directory) finds it again."""
    from pathlib import Path

    out = dict(settings)
    for name in ("corpus", "tokenizer"):
        spec = out.get(name)
        if not isinstance(spec, str) or not spec.strip() or (name == "corpus" and spec.strip().lower() in BUNDLED_CORPORA):
            continue
        try:
            path = Path(spec).expanduser()
            if path.is_file():
                out[name] = str(path.resolve())
        except (OSError, RuntimeError, ValueError):  # a path too long, a loop of links, a NUL
            pass
    return out


def form_options() -> tuple[Option, ...]:
    """The settings the training form shows, in order."""
    return tuple(o for o in train_options() if o.form)


# What `--resume` may change; everything else defines the run and stays as it was saved.
RESUMABLE = tuple(o.name for o in train_options() if o.resumable)


# ------------------------------------------------------------------ TOML files
MAX_TOML_BYTES = 1 << 20


def load_train_toml(path) -> dict:
    """TrainConfig keyword arguments from a TOML file with the same keys as the flags
    (``seq_len`` or ``seq-len``; a ``[train]`` table or top-level keys). Unknown keys are an error."""
    from pathlib import Path

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_TOML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_TOML_BYTES:
        raise ConfigError(f"{path} is over {MAX_TOML_BYTES >> 20} MiB: not a training config")
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {str(exc)[:200]}") from None
    if isinstance(table.get("train"), dict):
        table = table["train"]
    names = {o.name for o in train_options()}
    out = {str(k).replace("-", "_"): v for k, v in table.items()}
    unknown = sorted(set(out) - names)
    if unknown:
        raise ConfigError(f"{path}: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                          f"(the keys are the train flags: {', '.join(sorted(names))})")
    if out.get("clip") == 0:
        out["clip"] = None
    return out


def train_toml(config: TrainConfig) -> str:
    """The resolved configuration as TOML: ``rnn-tui train --config FILE`` runs it again as is."""
    import json

    lines = ["# rnn-tui train --config this-file: the settings of this run, every one resolved", "[train]"]
    for opt in train_options():
        value = getattr(config, opt.name)
        if value is None:
            if opt.name != "clip":
                continue
            value = 0.0  # clip off
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text = repr(value)
        else:
            text = json.dumps(str(value))  # a TOML basic string
        lines.append(f"{opt.name} = {text}  # {opt.help}")
    return "\n".join(lines) + "\n"
