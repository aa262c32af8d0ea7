"""Inputs and checks for the bad-input matrix (``tests/test_bad_inputs.py``) and the fault tests.

- :func:`run_aslfs` / :func:`run_stage` run the CLI / a DVC stage entry as a subprocess, the way a user does;
  :func:`error_line` asserts the error contract (non-zero exit, no traceback, exactly one error line on stderr) and
  returns that line.
- :func:`write_base_corpus` writes a small competition directory of two landmark files; :data:`BAD_FILES` turns its
  second file into one kind of broken file each.
- :func:`odd_sequences` are the valid-but-odd sequences (all NaN, one frame, 10,000 frames, ±inf, scattered NaN).
- :func:`write_tiny_submission` exports one random-weight ``tiny`` member (about 10 s) whose post-processing rule
  never fires for T >= 15, so its output depends on the frames.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aslfs.landmarks import ALL_COLUMNS, SELECTED_IN_ALL
from helpers import Seq, make_frames, write_dataset

ROOT = Path(__file__).resolve().parents[1]

#: Lines a native library or Prefect may print on stderr next to the error (they are not ours to silence): LiteRT
#: announces its CPU delegate on the first invocation; TensorFlow's C++ start-up logs (absl format) are written
#: before TF_CPP_MIN_LOG_LEVEL applies; stage entries run as Prefect flows that log.
_NOISE = (
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"),
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] "),  # absl/glog record from TF's C++
    re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| [A-Z]+ +\| "),  # a Prefect log record
    re.compile(r"^See https://www\.prefect\.io/docs/"),  # Prefect's note on its temporary server
)


def subprocess_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update({"PYTHONPATH": str(ROOT), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
                "DVC_NO_ANALYTICS": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2",
                "KERAS_BACKEND": env.get("KERAS_BACKEND", "tensorflow")})
    env.update(extra or {})
    return env


def run_aslfs(*args, cwd: str | Path | None = None, env: dict | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """``aslfs ARGS...`` in a fresh interpreter (``python -m stages.cli``); text output captured."""
    return subprocess.run([sys.executable, "-m", "stages.cli", *map(str, args)], cwd=cwd or ROOT,
                          env=subprocess_env(env), capture_output=True, text=True, timeout=timeout)


def run_stage(name: str, *args, cwd: str | Path | None = None, env: dict | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m stages.<name> ARGS...`` (the DVC entry point)."""
    return subprocess.run([sys.executable, "-m", f"stages.{name}", *map(str, args)], cwd=cwd or ROOT,
                          env=subprocess_env(env), capture_output=True, text=True, timeout=timeout)


def error_line(proc: subprocess.CompletedProcess, prefix: str) -> str:
    """Assert the error contract and return the error line.

    Non-zero exit status, no ``Traceback`` anywhere in the output, and on stderr exactly one line besides known
    library log lines (:data:`_NOISE`); that line starts with ``prefix`` (``"aslfs select: error: "``).
    """
    both = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"exit status 0\n{both[-3000:]}"
    assert "Traceback" not in both, both[-4000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not any(p.match(ln) for p in _NOISE)]
    assert len(lines) == 1, f"expected one error line on stderr, got {len(lines)}:\n" + "\n".join(lines[-20:])
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


def snapshot(path: str | Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of the file itself), by relative path: compare before and after."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent if path.is_file() else path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def leftovers(parent: str | Path) -> list[str]:
    """Hidden temporary siblings a writer may leave behind (``.<name>.tmp-*``, ``.<name>.tmp``)."""
    return sorted(p.name for p in Path(parent).iterdir() if p.name.startswith(".") and ".tmp" in p.name)


# ------------------------------------------------------------------------------------------------- base corpus
#: file 1: ids 101-104, file 2: ids 201-203 (train split); the matrix breaks file 2
FILE1_IDS = (101, 102, 103, 104)
FILE2_IDS = (201, 202, 203)
BAD_REL = "train_landmarks/2.parquet"


def write_base_corpus(root: str | Path, seed: int = 0) -> dict[int, np.ndarray]:
    """Two landmark files of valid random sequences (T 16-40) under ``root``; returns {sequence_id: (T, 1629)}."""
    rng = np.random.default_rng(seed)
    phrases = ("3 main st", "coffee", "hello world", "www.a.com")
    seqs, arrays = [], {}
    for file_id, ids in ((1, FILE1_IDS), (2, FILE2_IDS)):
        for k, sid in enumerate(ids):
            arrays[sid] = make_frames(rng, int(rng.integers(16, 41)))
            seqs.append(Seq(sid, participant_id=sid % 3, phrase=phrases[k % 4], frames=arrays[sid], file_id=file_id))
    write_dataset(root, seqs)
    return arrays


def _rewrite(path: Path, edit: Callable[[pa.Table], pa.Table]) -> None:
    table = pq.read_table(path)
    pq.write_table(edit(table), path)


def _drop_column(name: str):
    return lambda t: t.drop_columns([name])


def _text_column(name: str):
    def edit(t: pa.Table) -> pa.Table:
        values = [None if v is None else f"{v:.3f}" for v in t.column(name).to_pylist()]
        return t.set_column(t.schema.get_field_index(name), name, pa.array(values, pa.string()))
    return edit


def _extra_columns(t: pa.Table) -> pa.Table:
    n = t.num_rows
    t = t.append_column("note", pa.array(["made on a phone"] * n, pa.string()))
    return t.append_column("x_hat_0", pa.array(np.full(n, 0.5, np.float32)))


def _overwrite_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    start = len(data) // 3
    data[start:start + 20_000] = b"\xff" * 20_000  # over page headers: thrift cannot decode them
    path.write_bytes(bytes(data))


@dataclass(frozen=True)
class BadFile:
    """One way a landmark file can be broken: how to break it, and what the error line must say."""

    make: Callable[[Path], None]
    message: str  # regex searched in the error line (which must also name the file)


BAD_FILES: dict[str, BadFile] = {
    "missing_parquet": BadFile(lambda p: p.unlink(), r"not found|missing|no such"),
    "corrupt_parquet": BadFile(lambda p: p.write_bytes(b"this is not a parquet file\n" * 40),
                               r"not a readable parquet file"),
    "truncated_parquet": BadFile(lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                                 r"not a readable parquet file"),
    "corrupt_pages": BadFile(_overwrite_middle, r"cannot decode the parquet data"),
    "missing_column": BadFile(lambda p: _rewrite(p, _drop_column("x_right_hand_0")),
                              r"missing 1 landmark column\(s\): x_right_hand_0"),
    "text_in_coordinate_column": BadFile(lambda p: _rewrite(p, _text_column("y_face_0")),
                                         r"column y_face_0 has type (large_)?string, expected float32 or float64"),
}


def add_extra_columns(path: Path) -> None:
    """Valid, not an error: a text column and an unknown float column added to a landmark file."""
    _rewrite(path, _extra_columns)


# --------------------------------------------------------------------------------------------- odd sequences
ODD_IDS = {"all_nan": 301, "one_frame": 302, "ten_thousand_frames": 303, "inf_coordinates": 304,
           "nan_coordinates": 305}


def odd_sequences(seed: int = 5) -> dict[str, np.ndarray]:
    """The valid-but-odd sequences, (T, 1629) float32 each."""
    rng = np.random.default_rng(seed)
    long = np.full((10_000, len(ALL_COLUMNS)), np.nan, np.float32)  # only the selected columns carry data
    long[:, SELECTED_IN_ALL] = rng.random((10_000, len(SELECTED_IN_ALL)), dtype=np.float32)
    inf = make_frames(rng, 40, hand_missing=0.0)
    flat = inf.reshape(-1)
    hit = rng.random(flat.shape) < 0.1
    flat[hit] = np.where(rng.random(int(hit.sum())) < 0.5, np.inf, -np.inf).astype(np.float32)
    nan = make_frames(rng, 50, hand_missing=0.5)
    nan[rng.random(nan.shape) < 0.05] = np.nan
    return {
        "all_nan": np.full((30, len(ALL_COLUMNS)), np.nan, np.float32),
        "one_frame": make_frames(rng, 1, hand_missing=0.0),
        "ten_thousand_frames": long,
        "inf_coordinates": inf,
        "nan_coordinates": nan,
    }


def write_odd_corpus(root: str | Path) -> dict[str, np.ndarray]:
    """One landmark file holding the odd sequences plus one ordinary one (id 306); returns the odd frames by kind."""
    odd = odd_sequences()
    seqs = [Seq(ODD_IDS[k], participant_id=i % 2, phrase="odd one", frames=f) for i, (k, f) in enumerate(odd.items())]
    seqs.append(Seq(306, participant_id=1, phrase="ordinary", frames=make_frames(np.random.default_rng(6), 25)))
    write_dataset(root, seqs)
    return odd


def nan_for_inf(frames: np.ndarray) -> np.ndarray:
    return np.where(np.isinf(frames), np.float32(np.nan), frames).astype(np.float32)


# ------------------------------------------------------------------------------------------------ tiny model
def write_tiny_submission(folder: str | Path, seed: int = 3) -> Path:
    """Export one random-weight ``tiny`` member to ``folder/{model.tflite, inference_args.json}``; returns the
    ``.tflite`` path. The confidence bias is raised so that the dummy rule only fires below 15 frames."""
    from aslfs.export.graph import EnsembleGraph
    from aslfs.export.members import untrained_members
    from aslfs.export.tflite import write_submission
    from export.tiny_models import randomize

    (member,) = untrained_members("tiny", 1, seed=seed)
    randomize(member, seed=seed)
    bias = member.confidence_head.bias
    bias.assign(bias.numpy() + np.float32(30.0))
    return Path(write_submission(EnsembleGraph([member]), folder).tflite_path)
