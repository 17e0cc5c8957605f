"""Bring format-1 checkpoints to format 2 in place: the same weights, config.json gains its
config_sha256 (what covers the vocabulary, the model and training settings and the resume
state). Used on the bundled defaults; works on any run directory or best/.

    python scripts/upgrade_checkpoint.py rnn_tui/defaults/rnn rnn_tui/defaults/lstm rnn_tui/defaults/gru

The weights are checked against the tensors_sha256 config.json already records before
anything is written; model.safetensors is never touched. A checkpoint already in format 2
is left alone.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnn_tui.engine.checkpoint import FORMAT_VERSION, config_digest, load_model  # noqa: E402
from rnn_tui.runs.files import atomic_write  # noqa: E402
from rnn_tui.runs.layout import CONFIG_NAME, WEIGHTS_NAME  # noqa: E402


def upgrade(directory: Path) -> str:
    config = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
    if config.get("format_version") == FORMAT_VERSION and "config_sha256" in config:
        return "already format 2"
    if config.get("format_version") != 1:
        raise SystemExit(f"{directory}: format_version {config.get('format_version')!r}, expected 1")
    weights = hashlib.sha256((directory / WEIGHTS_NAME).read_bytes()).hexdigest()
    if weights != config.get("tensors_sha256"):
        raise SystemExit(f"{directory}: the weights do not match the tensors_sha256 of its config.json")
    before = load_model(directory, "cpu").model.state_dict()
    config["format_version"] = FORMAT_VERSION
    config.pop("config_sha256", None)
    config["config_sha256"] = config_digest(config)
    atomic_write(directory / CONFIG_NAME, (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    after = load_model(directory, "cpu").model.state_dict()
    assert all(before[k].equal(after[k]) for k in before), "the weights changed"
    return "upgraded to format 2"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for arg in sys.argv[1:]:
        print(f"{arg}: {upgrade(Path(arg))}")
