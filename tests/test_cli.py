"""The command line, run in-process: outputs, JSON shapes and every bad input's one-line error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnn_tui.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    code = main(["train", "grammar", "--cell", "gru", "--hidden", "16", "--embed", "8", "--steps", "30",
                 "--seq-len", "16", "--batch", "8", "--eval-every", "10", "--out", str(out)])
    assert code == 0
    return out


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines, "expected an error message on stderr"
    assert "Traceback" not in err
    return lines[-1]


def test_train_writes_a_run_directory(tiny_run):
    assert (tiny_run / "model.safetensors").is_file()
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["model"]["cell"] == "gru"
    lines = (tiny_run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) >= 30
    first = json.loads(lines[0])
    assert {"step", "loss", "grad_norm", "tokens_per_s"} <= set(first)


def test_info_json(tiny_run, capsys):
    code, out, _ = run(capsys, "info", str(tiny_run), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["cell"] == "gru"
    assert info["hidden"] == 16


def test_trace_json_and_unknown_characters(tiny_run, capsys):
    code, out, err = run(capsys, "trace", str(tiny_run), "the cat sat QX!", "--json")
    assert code == 0
    data = json.loads(out)
    assert "".join(data["tokens"]) == "the cat sat "
    assert len(data["next_loss"]) == len(data["tokens"])
    # The characters the vocabulary lacks are named, and what was done with them.
    assert "'Q'" in err and "'X'" in err and "'!'" in err and "skipped" in err


def test_grads_json(tiny_run, capsys):
    code, out, _ = run(capsys, "grads", str(tiny_run), "the cat that we saw was happy", "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data["dx"]) == len("the cat that we saw was happy")
    assert all(v is None or v >= 0 for v in data["dx"])


def test_jacobian_json(tiny_run, capsys):
    code, out, _ = run(capsys, "jacobian", str(tiny_run), "the cat was happy", "--json")
    assert code == 0
    data = json.loads(out)
    assert len(data["norms"]) == len("the cat was happy")
    assert "spectrum" in data


def test_sample_is_reproducible_with_a_seed(tiny_run, capsys):
    _, a, _ = run(capsys, "sample", str(tiny_run), "--prime", "the ", "--seed", "3", "--length", "40")
    _, b, _ = run(capsys, "sample", str(tiny_run), "--prime", "the ", "--seed", "3", "--length", "40")
    assert a == b
    assert a.startswith("the ") and len(a.rstrip("\n")) == 44


def test_sample_prime_follows_the_tuis_text_rule(capsys):
    # The bundled models know no capitals: "The Cat" is read as "the cat" (the TUI's rule), not
    # "he at" with the capitals dropped.
    code, out, err = run(capsys, "sample", "lstm", "--prime", "The Cat", "--seed", "0", "--length", "5")
    assert code == 0 and out.startswith("the cat") and "lowercased" in err
    code, _, err = run(capsys, "sample", "lstm", "--prime", "ÆØÅ", "--length", "5")
    assert code == 2 and "can read none of this prompt" in err


def test_sample_text_human_readable(tiny_run, capsys):
    import re

    code, out, _ = run(capsys, "trace", str(tiny_run), "the cat")
    assert code == 0
    assert "mean loss" in out
    header, *rows = out.splitlines()[1:]
    assert len(rows) == 7
    top = header.index("top-")
    for row in rows:  # each top-k entry "token p", two spaces apart: ":" is never read as a number
        assert re.fullmatch(r"\S+ \d\.\d\d(  \S+ \d\.\d\d)*", row[top:]), row


# ---------------------------------------------------------------- bad input, each one
@pytest.mark.parametrize("content,fragment", [
    (b"", "empty"),
    (b"\x00\x01\x02binary\x00", "binary"),
    (b"caf\xe9 au lait", "UTF-8"),
])
def test_bad_corpus_files(tmp_path, capsys, content, fragment):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    code, _, err = run(capsys, "train", str(path), "--steps", "2", "--out", str(tmp_path / "r"))
    assert code == 2
    assert fragment.lower() in _one_error_line(err).lower()
    assert not (tmp_path / "r" / "config.json").exists()


def test_corpus_shorter_than_one_batch(tmp_path, capsys):
    path = tmp_path / "short.txt"
    path.write_text("a tiny corpus.")
    code, _, err = run(capsys, "train", str(path), "--batch", "32", "--seq-len", "64", "--steps", "2",
                       "--out", str(tmp_path / "r"))
    assert code == 2
    line = _one_error_line(err)
    assert "batch" in line and "tokens" in line


def test_missing_corpus(capsys, tmp_path):
    code, _, err = run(capsys, "train", str(tmp_path / "nope.txt"), "--steps", "2")
    assert code == 2
    assert "no such file" in _one_error_line(err)


def test_corpus_flag_is_the_positional_corpus(capsys, tmp_path):
    code, _, err = run(capsys, "train", str(tmp_path / "nope.txt"), "--corpus", "grammar", "--steps", "2")
    assert code == 2 and "two corpora given" in _one_error_line(err)
    code, _, err = run(capsys, "train", "--corpus", str(tmp_path / "nope.txt"), "--steps", "2")
    assert code == 2 and "no such file" in _one_error_line(err)
    code, _, _ = run(capsys, "train", "--corpus", "parity", "--hidden", "4", "--steps", "2",
                     "--out", str(tmp_path / "run"))
    assert code == 0 and json.loads((tmp_path / "run" / "config.json").read_text())["corpus"] == "parity"


@pytest.mark.parametrize("flag,value,fragment", [
    ("--cell", "transformer", "unknown cell 'transformer'"),
    ("--init", "kaiming", "unknown init 'kaiming'"),
    ("--optimizer", "adamx", "unknown optimizer 'adamx'"),
])
def test_unknown_names(capsys, tmp_path, flag, value, fragment):
    code, _, err = run(capsys, "train", "grammar", flag, value, "--steps", "2", "--out", str(tmp_path / "r"))
    assert code == 2
    assert fragment in _one_error_line(err)


def test_divergence_is_reported_and_weights_kept(capsys, tmp_path):
    out = tmp_path / "boom"
    code, _, err = run(capsys, "train", "grammar", "--cell", "rnn", "--hidden", "16", "--optimizer", "sgd",
                       "--lr", "1e6", "--clip", "0", "--steps", "50", "--seq-len", "16", "--batch", "8",
                       "--out", str(out))
    assert code == 3
    assert "nan" in err.lower() or "inf" in err.lower()
    assert "Traceback" not in err


def test_truncated_checkpoint(tiny_run, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, _, err = run(capsys, "trace", str(broken), "the cat")
    assert code == 2
    assert str(broken) in _one_error_line(err)


def test_checkpoint_from_another_vocabulary(tiny_run, tmp_path, capsys):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    config = json.loads((other / "config.json").read_text())
    config["model"]["vocab_size"] += 3
    config["vocab"]["tokens"] = list(config["vocab"]["tokens"]) + ["Q", "X", "Z"]
    (other / "config.json").write_text(json.dumps(config))
    code, _, err = run(capsys, "info", str(other))
    assert code == 2
    assert "was edited after saving" in _one_error_line(err)  # config_sha256 covers the vocab
    from rnn_tui.engine.checkpoint import config_digest

    config["config_sha256"] = config_digest(config)  # edited by something that knows the format
    (other / "config.json").write_text(json.dumps(config))
    code, _, err = run(capsys, "info", str(other))
    assert code == 2
    assert "does not match" in _one_error_line(err)  # the weights' shapes still tell


def test_long_text_to_a_probe_is_bounded(tiny_run, capsys):
    text = "the cat that we saw yesterday was happy. " * 250  # 10,250 characters
    code, _, err = run(capsys, "jacobian", str(tiny_run), text, "--json")
    assert code == 2
    assert "token" in _one_error_line(err)


def test_unknown_model_name(capsys):
    code, _, err = run(capsys, "info", "no-such-model")
    assert code == 2
    assert "no-such-model" in _one_error_line(err)


def test_bad_number_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "grammar", "--hidden", "zero"])
    assert exc.value.code == 2
    assert "expected a whole number" in capsys.readouterr().err


def test_engine_imports_without_textual():
    code = ("import sys; import rnn_tui.engine, rnn_tui.engine.model, rnn_tui.engine.corpus, "
            "rnn_tui.engine.train, rnn_tui.engine.probes, rnn_tui.engine.sampling, "
            "rnn_tui.engine.checkpoint, rnn_tui.engine.bench; "
            "assert 'textual' not in sys.modules, 'engine imported textual'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("argv,fragment", [
    (["trian"], "unknown command 'trian': did you mean 'train'?"),
    (["/no/such/run"], "no model at '/no/such/run'"),
    (["train", "grammar", "--hidden", "0"], "rnn-tui train: error: argument --hidden: must be at least 1"),
    (["sample", "lstm", "--json"], "rnn-tui sample: error: unrecognized arguments: --json"),
    (["sample", "lstm", "--temperature", "0"], "--temperature must be > 0"),
])
def test_mistakes_are_one_line_before_anything_starts(capsys, argv, fragment):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own checks exit (status 2) from inside main
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert fragment in _one_error_line(err) and err.strip().count("\n") == 0, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_tui_with_a_missing_gpu_is_one_line(capsys):
    assert main(["--device", "cuda"]) == 2
    assert "no CUDA GPU" in _one_error_line(capsys.readouterr().err)


def test_flags_that_do_nothing_for_this_model_say_so(capsys, tmp_path):
    code, _, err = run(capsys, "train", "grammar", "--cell", "gru", "--nonlinearity", "relu", "--dropout", "0.2",
                       "--hidden", "4", "--steps", "2", "--out", str(tmp_path / "r"))
    assert code == 0
    assert "--nonlinearity only applies to the vanilla cell" in err and "--dropout acts between stacked" in err


def test_resume_says_what_it_did_and_which_corpus_the_run_knows(tiny_run, capsys):
    before = (tiny_run / "config.json").stat().st_mtime_ns
    code, out, _ = run(capsys, "train", "--resume", str(tiny_run))
    assert code == 0 and "nothing to train" in out and "saved" not in out
    assert (tiny_run / "config.json").stat().st_mtime_ns == before
    code, _, err = run(capsys, "train", "--resume", str(tiny_run), "parity")
    assert code == 2 and "was trained on 'grammar'" in _one_error_line(err)


def test_a_file_is_not_taken_for_its_folder(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = run(capsys, "info", str(tmp_path / "notes.txt"))
    assert code == 2 and "notes.txt is a file, not a checkpoint" in _one_error_line(err)


@pytest.mark.parametrize("name,fragment", [("notes.txt", "rnn-tui train"), ("net.pt", "rnn-tui import"),
                                           ("empty", "holds no run")])
def test_the_app_on_what_is_not_a_run_says_what_to_do_before_it_starts(capsys, tmp_path, name, fragment):
    path = tmp_path / name
    if name == "empty":
        path.mkdir()
    else:
        path.write_bytes(b"x")
    code, _, err = run(capsys, str(path))  # no TUI: one line and status 2
    assert code == 2 and fragment in _one_error_line(err)


def test_experiment_list_one(capsys):
    code, out, _ = run(capsys, "experiment", "--list", "zog")
    assert code == 0 and out.startswith("zog ") and len(out.strip().splitlines()) == 2


def test_top_level_help_lists_the_subcommands(capsys):
    from rnn_tui.cli.parser import SUBCOMMANDS

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    listed = out.split("subcommands (rnn-tui SUBCOMMAND --help):", 1)[1].splitlines()
    names = [line.split()[0] for line in listed if line.strip()]
    assert names == list(SUBCOMMANDS)
    assert any(line.split()[0] == "trace" and "next-token" in line for line in listed if line.strip())


# ------------------------------------------------------------------ inputs that used to be internal errors
@pytest.mark.parametrize("argv,says", [
    (["train", "grammar", "--seed", "18446744073709551616"], "argument --seed: must be at most 18,446,744,073,709,551,615"),
    (["sample", "lstm", "--seed", "18446744073709551616"], "argument --seed: must be at most"),
    (["serve", "--port", "70000"], "argument --port: must be at most 65,535"),
    (["train", "grammar", "--steps", "10" * 40], "argument --steps: must be at most 2,147,483,647"),
    (["experiment", "parity", "--set", "seed=18446744073709551616"], "seed must be a whole number from 0 to"),
    (["experiment", "parity", "--set", "steps=" + "[" * 100_000], "nested too deeply"),
])
def test_out_of_range_numbers_and_deep_json_are_one_line(capsys, argv, says):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own mistakes: exit status 2, one line
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and says in _one_error_line(err), err[-500:]


@pytest.mark.parametrize("section", ["model", "train"])
def test_a_bool_for_a_number_in_a_config_is_one_line(tiny_run, tmp_path, capsys, section):
    import shutil

    from rnn_tui.engine.checkpoint import config_digest

    run_dir = tmp_path / "r"
    shutil.copytree(tiny_run, run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config[section]["layers"] = True  # JSON's true is not 1
    config["config_sha256"] = config_digest(config)
    (run_dir / "config.json").write_text(json.dumps(config))
    code, _, err = run(capsys, "info" if section == "model" else "train", *(["--resume"] if section == "train" else []),
                       str(run_dir))
    assert code == 2 and "layers must be a positive whole number, got True" in _one_error_line(err)


def test_a_config_nested_100k_deep_is_one_line(tmp_path, capsys):
    run_dir = tmp_path / "deep"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run(capsys, "info", str(run_dir))
    assert code == 2 and "nested too deeply" in _one_error_line(err)


def test_a_model_too_large_for_the_machine_is_refused_before_it_is_built(capsys, tmp_path):
    code, _, err = run(capsys, "train", "grammar", "--layers", "32", "--embed", "16384", "--hidden", "16384",
                       "--steps", "1", "--device", "cpu", "--out", str(tmp_path / "big"))
    assert code == 2  # was: "internal error: RuntimeError: ... can't allocate memory"
    assert "parameters" in _one_error_line(err) and "to train, more than the" in _one_error_line(err)


def test_the_cpu_allocator_failing_is_out_of_memory_not_an_internal_error(capsys):
    from rnn_tui.cli.output import report_error

    assert report_error(RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate "
                                     "memory: you tried to allocate 274877906944 bytes")) == 2
    assert "ran out of memory" in _one_error_line(capsys.readouterr().err)


def _no_permission_runner():
    """A way to run the CLI as someone a chmod 000 keeps out: this user, or root without its
    capabilities (setpriv); None when neither is possible here."""
    import shutil

    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    probe = subprocess.run([setpriv, "--bounding-set=-all", "--", sys.executable, "-c", "pass"], capture_output=True)
    return [setpriv, "--bounding-set=-all", "--"] if probe.returncode == 0 else None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_run_directory_without_permission_is_one_line(tiny_run, tmp_path):
    import shutil

    prefix = _no_permission_runner()
    if prefix is None:
        pytest.skip("cannot drop the permissions to read any directory here")
    locked = tmp_path / "locked"
    shutil.copytree(tiny_run, locked / "run")
    locked.chmod(0)
    try:
        for argv in (["info", "locked/run"], ["trace", "locked/run", "the cat"], ["train", "--resume", "locked/run"],
                     ["train", "grammar", "--steps", "2", "--no-cache", "--out", "locked/new"],
                     ["watch", "locked/run"], ["locked/run"]):
            proc = subprocess.run([*prefix, sys.executable, "-m", "rnn_tui", *argv], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=120, stdin=subprocess.DEVNULL,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT)))
            assert proc.returncode == 2, (argv, proc.stderr[-800:])
            assert "Permission denied" in _one_error_line(proc.stderr) and "internal" not in proc.stderr, argv
    finally:
        locked.chmod(0o755)


# ------------------------------------------------------------------ --window
@pytest.mark.parametrize("probe", ["trace", "grads", "jacobian"])
def test_a_text_over_the_limit_names_a_window_the_cli_has(tiny_run, capsys, probe):
    text = "the cat that we saw yesterday was happy. " * 250  # 10,250 characters
    code, _, err = run(capsys, probe, str(tiny_run), text, "--json")
    line = _one_error_line(err)
    assert code == 2 and "window=" not in line  # an option neither the CLI nor the TUI had
    fit = int(line.rsplit("--window ", 1)[1].rstrip(")"))
    code, out, err = run(capsys, probe, str(tiny_run), text, "--json", "--window", str(fit))
    assert code == 0, err
    data = json.loads(out)
    assert len(data["tokens"]) == fit and data["offset"] == len(text) - fit
    assert f"read the last {fit:,} tokens" in err


def test_a_new_run_of_zero_steps_is_refused_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "empty"
    code, _, err = run(capsys, "train", "grammar", "--steps", "0", "--out", str(out))
    assert code == 2
    assert "needs at least one step" in _one_error_line(err)
    assert not out.exists()


def test_the_progress_lines_carry_every_validation(tmp_path, capsys):
    # Without a terminal the progress is a line every 10% of the run (steps 4, 8, ... of 40);
    # the validations at 6, 18 and 30 fall between those and get lines of their own.
    out = tmp_path / "val"
    code, _, err = run(capsys, "train", "grammar", "--cell", "rnn", "--hidden", "8", "--embed", "4",
                       "--steps", "40", "--seq-len", "8", "--batch", "4", "--eval-every", "6",
                       "--log-every", "1", "--out", str(out))
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    vals = {int(line.split()[1].split("/")[0]) for line in lines if " val " in line and "@" not in line}
    assert {6, 18, 30} <= vals
    assert any("@" in line for line in lines)  # a later line keeps the last validation and its step


def test_the_probes_take_the_text_as_sentence_too(tiny_run, capsys):
    code, out, _ = run(capsys, "trace", str(tiny_run), "--sentence", "the cat", "--json")
    assert code == 0 and len(json.loads(out)["tokens"]) == 7
    code, _, err = run(capsys, "grads", str(tiny_run))
    assert code == 2 and "give the text to read" in _one_error_line(err)
    code, _, err = run(capsys, "jacobian", str(tiny_run), "the cat", "--sentence", "a dog")
    assert code == 2 and "not both" in _one_error_line(err)


def test_a_bundled_name_beside_a_folder_of_that_name_is_still_the_bundled_model(tmp_path, monkeypatch):
    from rnn_tui.cli.tui import check_tui_model
    from rnn_tui.engine.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "lstm").mkdir()  # a project folder named like the bundled model
    check_tui_model("lstm")  # no error: `rnn-tui lstm` opens the bundled LSTM, as before
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError, match="holds no run"):
        check_tui_model("mine")
