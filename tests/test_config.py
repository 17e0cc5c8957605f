"""engine.config: the one place that defines training settings, read by the CLI and the form."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rnn_tui.engine.config import TrainConfig, form_options, train_option, train_options
from rnn_tui.engine.errors import ConfigError


def test_config_module_does_not_import_torch():
    code = "import sys, rnn_tui.engine.config, rnn_tui.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_option_is_a_field_with_its_default():
    config = TrainConfig()
    names = [o.name for o in train_options()]
    assert names == list(config.to_dict())
    for opt in train_options():
        assert getattr(config, opt.name) == opt.default, opt.name


def test_cli_flags_are_generated_from_the_options():
    from rnn_tui.cli.parser import sub_parser as _sub_parser

    train = _sub_parser().subcommands["train"]
    flags = {a.dest: a for a in train._actions}
    for opt in train_options():
        if opt.flag:
            assert opt.name in flags, opt.name
            assert flags[opt.name].default is None  # "not given": TrainConfig has the default
            assert opt.default_text() in flags[opt.name].help
        elif opt.name != "corpus":  # corpus is the positional argument
            assert opt.name not in flags
    # choices show in the usage, from the config's own tuples
    assert "{rnn,lstm,gru}" in train.format_usage()


def test_form_fields_are_the_form_options():
    from rnn_tui.screens.training import FORM_DEFAULTS, FORM_FIELDS

    assert list(FORM_FIELDS) == [o.name for o in form_options()]
    assert FORM_FIELDS["cell"][1] == train_option("cell").choices
    assert FORM_DEFAULTS["steps"] == TrainConfig().steps


def test_option_parse_names_the_field_by_its_label():
    assert train_option("seq_len").parse(" 12 ") == 12
    assert train_option("clip").parse("off") is None
    assert train_option("cell").parse("GRU") == "gru"
    with pytest.raises(ConfigError, match="seq len: expected a whole number"):
        train_option("seq_len").parse("twelve")
    with pytest.raises(ConfigError, match="optim: choose one of adam, adamw, sgd"):
        train_option("optimizer").parse("rmsprop")


def test_bools_are_not_whole_numbers():
    with pytest.raises(ConfigError, match="layers must be a positive whole number"):
        TrainConfig(layers=True)


def test_train_config_files_round_trip(tmp_path, capsys):
    from rnn_tui.cli import main
    from rnn_tui.engine.config import load_train_toml, train_toml

    cfg = tmp_path / "run.toml"
    cfg.write_text('[train]\ncorpus = "grammar"\nseq-len = 8\nhidden = 8\nembed = 4\nsteps = 3\n'
                   'eval_every = 0\nbatch = 2\nclip = 0\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--hidden", "12", "--out", str(out)]) == 0
    kept = load_train_toml(out / "train.toml")
    assert kept["hidden"] == 12 and kept["seq_len"] == 8 and kept["clip"] is None  # the flag won; clip off
    assert TrainConfig(**kept) == TrainConfig(**{**kept})
    # the kept file runs the same thing again
    assert main(["train", "--config", str(out / "train.toml"), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "train.toml").read_text() == train_toml(TrainConfig(**kept))
    bad = tmp_path / "bad.toml"
    bad.write_text("hiden = 8\n")
    capsys.readouterr()
    assert main(["train", "--config", str(bad)]) == 2
    assert "unknown setting hiden" in capsys.readouterr().err
