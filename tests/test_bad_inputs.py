"""The bad-input matrix: what every entry point does with the messy inputs MediaPipe corpora and users produce.

Each section is one table, parametrised as (input kind × consumer), so a reader sees in one place what happens to,
say, a truncated parquet file in the reader, in ``aslfs select`` (both ``on_invalid`` policies) and in
``aslfs predict``. Commands run as subprocesses, the way a user runs them.

The contract checked everywhere:

- an **error** is a non-zero exit, no traceback, and exactly one line on stderr that names the input (file,
  sequence or parameter key) and the problem (:func:`bad_inputs_fixtures.error_line`);
- a **valid but odd** sequence (all NaN, one frame, 10,000 frames, ±inf, scattered NaN) still gets a prediction row,
  from ``aslfs predict`` and from the TFLite graph;
- a failed run **loses nothing already written**: the previous output (store, csv) is byte-identical afterwards and
  no temporary sibling is left behind.

Sections: 1. broken landmark files, 2. odd sequences, 3. metadata (csv) problems, 4. params.yaml problems,
5. unwritable outputs, 6. previous outputs survive a failed run.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from aslfs.errors import DataError
from aslfs.vocab import DUMMY_PHRASE, VOCAB_SIZE
from bad_inputs_fixtures import (
    BAD_FILES,
    BAD_REL,
    FILE1_IDS,
    FILE2_IDS,
    ODD_IDS,
    add_extra_columns,
    error_line,
    leftovers,
    nan_for_inf,
    run_aslfs,
    run_stage,
    snapshot,
    write_base_corpus,
    write_odd_corpus,
    write_tiny_submission,
)
from helpers import demo_params_file, selected

PREVIOUS_CSV = "sequence_id,phrase\n1,written before\n"


# ----------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tflite(tmp_path_factory) -> Path:
    return write_tiny_submission(tmp_path_factory.mktemp("submission"))


@pytest.fixture(scope="module")
def recognizer(tflite):
    from aslfs.export.runtime import TFLiteRecognizer

    return TFLiteRecognizer(tflite, threads=1)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A valid two-file corpus, its arrays, and the selected store an earlier good run wrote from it."""
    from aslfs.config import SelectParams
    from aslfs.data.select import select

    root = tmp_path_factory.mktemp("base")
    arrays = write_base_corpus(root / "raw")
    select(root / "raw", root / "selected", SelectParams(on_invalid="error", workers=1))
    return {"raw": root / "raw", "arrays": arrays, "selected": root / "selected"}


def copy_raw(base, tmp_path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(base["raw"], raw)
    return raw


def read_report(store: Path) -> dict:
    return json.loads((store / "report.json").read_text())


# ====================================================================================== 1. broken landmark files
FILE_CONSUMERS = ("reader", "select", "select_skip", "predict_dir", "predict_file")


@pytest.mark.parametrize("consumer", FILE_CONSUMERS)
@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_broken_landmark_file(kind, consumer, base, tflite, tmp_path):
    from aslfs.data.reader import iter_file_sequences
    from aslfs.data.store import SequenceStore

    raw = copy_raw(base, tmp_path)
    bad = raw / BAD_REL
    BAD_FILES[kind].make(bad)
    expected = BAD_FILES[kind].message

    if consumer == "reader":
        with pytest.raises(DataError) as info:
            list(iter_file_sequences(bad))
        message = str(info.value)
        assert "\n" not in message and str(bad) in message
        assert re.search(expected, message), message
        return

    if consumer in ("select", "select_skip"):
        out = tmp_path / "selected"
        shutil.copytree(base["selected"], out)  # an earlier good run's store
        before = snapshot(out)
        policy = "error" if consumer == "select" else "skip"
        proc = run_aslfs("select", raw, out, "--params", demo_params_file(), "--on-invalid", policy)
        if consumer == "select":
            line = error_line(proc, "aslfs select: error: ")
            assert str(bad) in line
            assert re.search(expected, line), line
            assert snapshot(out) == before and leftovers(tmp_path) == []
            return
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stdout + proc.stderr
        report = read_report(out)
        assert report["skipped"]["bad_file"]["sequence_ids"] == list(FILE2_IDS)
        assert len(report["files_failed"]) == 1 and str(bad) in report["files_failed"][0]
        assert re.search(expected, report["files_failed"][0])
        assert "skipped 3: bad_file 3" in proc.stdout
        store = SequenceStore(out)
        assert store.index.sequence_id.tolist() == list(FILE1_IDS)  # the good file is kept, value for value
        for sid in FILE1_IDS:
            np.testing.assert_array_equal(store.load_id(sid), selected(base["arrays"][sid]))
        return

    # aslfs predict, on the directory or on the broken file itself
    out = tmp_path / "pred.csv"
    out.write_text(PREVIOUS_CSV)
    source = raw if consumer == "predict_dir" else bad
    line = error_line(run_aslfs("predict", tflite, source, "--out", out), "aslfs predict: error: ")
    assert str(bad) in line
    assert re.search(expected, line), line
    assert out.read_text() == PREVIOUS_CSV and leftovers(tmp_path) == []


@pytest.mark.parametrize("consumer", ("select", "predict"))
def test_extra_columns_are_ignored(consumer, base, tflite, tmp_path, recognizer):
    """Extra columns (a text column, an unknown landmark) are not an error: the selected values are unchanged."""
    from aslfs.data.store import SequenceStore

    raw = copy_raw(base, tmp_path)
    add_extra_columns(raw / BAD_REL)
    if consumer == "select":
        proc = run_aslfs("select", raw, tmp_path / "sel", "--params", demo_params_file(), "--on-invalid", "error")
        assert proc.returncode == 0, proc.stderr[-3000:]
        store = SequenceStore(tmp_path / "sel")
        assert store.index.sequence_id.tolist() == list(FILE1_IDS + FILE2_IDS)
        for sid in FILE2_IDS:
            np.testing.assert_array_equal(store.load_id(sid), selected(base["arrays"][sid]))
        return
    proc = run_aslfs("predict", tflite, raw / BAD_REL, "--out", tmp_path / "p.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = pd.read_csv(tmp_path / "p.csv", dtype={"phrase": str}, keep_default_na=False)
    assert got.sequence_id.tolist() == list(FILE2_IDS)
    assert got.phrase.tolist() == [recognizer.predict(selected(base["arrays"][s])) for s in FILE2_IDS]


# ============================================================================================== 2. odd sequences
ODD_CONSUMERS = ("reader", "select", "normalize", "predict", "tflite")


@pytest.fixture(scope="module")
def odd(tmp_path_factory, tflite):
    """The odd corpus through ``aslfs select`` (skip), ``aslfs normalize`` and ``aslfs predict``, once each."""
    root = tmp_path_factory.mktemp("odd")
    frames = write_odd_corpus(root / "raw")
    runs = {
        "select": run_aslfs("select", root / "raw", root / "sel", "--params", demo_params_file(),
                            "--on-invalid", "skip"),
        "normalize": run_aslfs("normalize", root / "sel", root / "norm"),
        "predict": run_aslfs("predict", tflite, root / "raw", "--out", root / "pred.csv"),
    }
    for name, proc in runs.items():
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, f"{name}: {proc.stderr[-3000:]}"
    return {"root": root, "frames": frames, "runs": runs}


@pytest.mark.parametrize("consumer", ODD_CONSUMERS)
@pytest.mark.parametrize("kind", list(ODD_IDS))
def test_odd_sequence(kind, consumer, odd, recognizer):
    from aslfs.data.normalize import normalize_np
    from aslfs.data.reader import iter_file_sequences
    from aslfs.data.store import SequenceStore

    sid = ODD_IDS[kind]
    raw = selected(odd["frames"][kind])  # (T, 390) as the reader must return it
    finite_twin = nan_for_inf(raw)  # what ±inf must behave like: a missing value

    if consumer == "reader":
        got = dict(iter_file_sequences(odd["root"] / "raw" / "train_landmarks" / "1.parquet"))
        np.testing.assert_array_equal(got[sid], raw)  # NaN where NaN, ±inf kept, every frame in file order
        return

    if consumer == "select":
        report = read_report(odd["root"] / "sel")
        store = SequenceStore(odd["root"] / "sel")
        if kind == "all_nan":  # nothing to learn from: skipped, and said so
            assert report["skipped"]["all_nan"]["sequence_ids"] == [sid]
            assert sid not in set(store.index.sequence_id)
            assert f"sequence {sid}: all 30 frames are NaN" in odd["runs"]["select"].stdout
        else:
            np.testing.assert_array_equal(store.load_id(sid), raw)
        assert report["skipped_total"] == 1
        return

    if consumer == "normalize":
        if kind == "all_nan":  # not in the store (skipped by select); the function maps it to zeros
            np.testing.assert_array_equal(normalize_np(raw), np.zeros((30, 130, 3), np.float32))
            return
        out = SequenceStore(odd["root"] / "norm").load_id(sid)
        assert out.shape == (len(raw), 130, 3) and np.isfinite(out).all()
        np.testing.assert_array_equal(out, normalize_np(finite_twin))  # ±inf counts as missing, like NaN
        return

    if consumer == "predict":
        got = pd.read_csv(odd["root"] / "pred.csv", dtype={"phrase": str}, keep_default_na=False)
        assert got.sequence_id.tolist() == [*ODD_IDS.values(), 306]  # every listed sequence gets a row
        phrase = got.set_index("sequence_id").phrase[sid]
        assert phrase == recognizer.predict(raw) == recognizer.predict(finite_twin)
        if kind == "one_frame":
            assert phrase == DUMMY_PHRASE  # under 15 frames the rule answers
        return

    # the TFLite graph, through the runtime the harness uses
    rows = recognizer.logits(raw)
    assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == VOCAB_SIZE and rows.shape[0] <= 32
    assert np.isfinite(rows).all()
    np.testing.assert_array_equal(rows, recognizer.logits(finite_twin))
    diag = recognizer.diagnose(raw)
    assert diag.frames == len(raw) and np.isfinite(diag.confidence)
    if kind != "one_frame":
        assert not diag.dummy and diag.phrase == diag.raw  # the model itself answered


def test_empty_sequence_in_the_tflite_graph(recognizer):
    """T = 0 (a sequence without frames) still gets a phrase: the dummy one."""
    rows = recognizer.logits(np.zeros((0, 390), np.float32))
    assert rows.shape[1] == VOCAB_SIZE and np.isfinite(rows).all()
    assert recognizer.predict(np.zeros((0, 390), np.float32)) == DUMMY_PHRASE


# ======================================================================================= 3. metadata (csv) problems
def _edit_csv(raw: Path, edit) -> None:
    path = raw / "train.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    edit(df).to_csv(path, index=False)


def _set_phrase(sid: int, phrase: str):
    def edit(raw: Path, arrays) -> None:
        def change(df):
            df.loc[df.sequence_id == str(sid), "phrase"] = phrase
            return df
        _edit_csv(raw, change)
    return edit


def _add_row(raw: Path, arrays) -> None:  # listed, but the parquet file has no rows for it (an empty sequence)
    _edit_csv(raw, lambda df: pd.concat([df, pd.DataFrame([{"path": "train_landmarks/1.parquet", "file_id": "1",
                                                            "sequence_id": "105", "participant_id": "0",
                                                            "phrase": "ghost"}])], ignore_index=True))


def _drop_row(raw: Path, arrays) -> None:  # rows in the parquet file, listed nowhere
    _edit_csv(raw, lambda df: df[df.sequence_id != "104"])


def _text_id(raw: Path, arrays) -> None:
    def change(df):
        df.loc[df.sequence_id == "102", "sequence_id"] = "10x2"
        return df
    _edit_csv(raw, change)


def _all_nan_103(raw: Path, arrays) -> None:
    from aslfs.data.kaggle_format import write_landmark_file

    items = [(sid, np.full_like(arrays[sid], np.nan) if sid == 103 else arrays[sid]) for sid in FILE1_IDS]
    write_landmark_file(raw / "train_landmarks" / "1.parquet", items)


#: kind -> (edit(raw, arrays), sequence id, select report reason, error regex, what predict does: "row" | "absent"
#: | "error")
META_CASES = {
    "phrase_out_of_vocabulary": (_set_phrase(101, "héllo wörld"), 101, "phrase_out_of_vocabulary",
                                 r"train\.csv: sequence 101: phrase 'héllo wörld' has characters outside the "
                                 r"vocabulary: 'éö'", "row"),
    "phrase_longer_than_31": (_set_phrase(102, "a" * 32), 102, "phrase_too_long",
                              r"train\.csv: sequence 102: phrase has 32 characters \(at most 31\)", "row"),
    "phrase_empty": (_set_phrase(103, ""), 103, "phrase_empty", r"train\.csv: sequence 103: empty phrase", "row"),
    "csv_id_missing_from_parquet": (_add_row, 105, "missing_from_parquet",
                                    r"1\.parquet: sequence 105 is listed in the metadata but has no rows", "error"),
    "parquet_id_missing_from_csv": (_drop_row, 104, "not_in_csv",
                                    r"1\.parquet: sequence 104 is in the parquet file but in no metadata csv",
                                    "absent"),
    "all_nan_sequence": (_all_nan_103, 103, "all_nan", r"1\.parquet: sequence 103: all \d+ frames are NaN", "row"),
    "text_sequence_id": (_text_id, None, None,
                         r"train\.csv: line 3: column sequence_id must be an integer, got '10x2'", "error"),
}


@pytest.mark.parametrize("consumer", ("select", "select_skip", "predict"))
@pytest.mark.parametrize("kind", list(META_CASES))
def test_metadata_problem(kind, consumer, base, tflite, recognizer, tmp_path):
    from aslfs.data.store import SequenceStore

    edit, sid, reason, message, in_predict = META_CASES[kind]
    raw = copy_raw(base, tmp_path)
    edit(raw, base["arrays"])
    listed = [s for s in FILE1_IDS + FILE2_IDS if s != 104 or kind != "parquet_id_missing_from_csv"]

    if consumer == "predict":
        out = tmp_path / "pred.csv"
        out.write_text(PREVIOUS_CSV)
        proc = run_aslfs("predict", tflite, raw, "--out", out)
        if in_predict == "error":
            assert re.search(message, error_line(proc, "aslfs predict: error: "))
            assert out.read_text() == PREVIOUS_CSV
            return
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = pd.read_csv(out, dtype={"phrase": str, "label": str}, keep_default_na=False)
        assert got.sequence_id.tolist() == listed  # the csv decides what is predicted
        assert (sid in set(got.sequence_id)) == (in_predict == "row")
        if in_predict == "row":  # the label is only a label: the row is there, with its score
            row = got.set_index("sequence_id").loc[sid]
            assert row.phrase == recognizer.predict(selected(
                np.full_like(base["arrays"][sid], np.nan) if kind == "all_nan_sequence" else base["arrays"][sid]))
            assert np.isfinite(row.score)
        return

    out = tmp_path / "selected"
    policy = "error" if consumer == "select" else "skip"
    proc = run_aslfs("select", raw, out, "--params", demo_params_file(), "--on-invalid", policy)
    if consumer == "select" or reason is None:  # a csv that cannot be read fails whatever the policy
        line = error_line(proc, "aslfs select: error: ")
        assert re.search(message, line), line
        assert not out.exists() and leftovers(tmp_path) == []
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = read_report(out)
    assert report["skipped"][reason]["sequence_ids"] == [sid] and report["skipped_total"] == 1
    assert any(re.search(message, m) for m in report["messages"]), report["messages"]
    kept = SequenceStore(out).index.sequence_id.tolist()
    assert kept == [s for s in listed if s != sid]


# ========================================================================================= 4. params.yaml problems
#: command -> (argv after the command name, with RAW/SEL/OUT placeholders; the key path it reads)
PARAMS_COMMANDS = {
    "aslfs select": (("RAW", "OUT"), ("select", "workers")),
    "aslfs folds": (("SEL", "OUT/folds.csv"), ("folds", "n_folds")),
    "aslfs train": (("1", "0", "1", "SEL", "OUT/folds.csv", "OUT/model", "--no-track"), ("train", "round1", "epochs")),
    "stage select": (("RAW", "OUT"), ("select", "workers")),
    "stage folds": (("SEL", "OUT/folds.csv"), ("folds", "n_folds")),
}


def _break_params(params: dict, kind: str, key: tuple[str, ...]) -> tuple[str, str]:
    """Break ``params`` in place; returns (text to write, regex the error line must match)."""
    node = params
    for part in key[:-1]:
        node = node[part]
    dotted = ".".join(key)
    if kind == "unknown_key":
        node[key[-1] + "_typo"] = node[key[-1]]
        return yaml.safe_dump(params), re.escape(dotted + "_typo") + r": Extra inputs are not permitted"
    if kind == "wrong_type":
        node[key[-1]] = "two"
        return yaml.safe_dump(params), re.escape(dotted) + r": Input should be a valid integer"
    if kind == "unknown_section":
        params["trian"] = {"round1": {"epochs": 3}}
        return yaml.safe_dump(params), r"trian: Extra inputs are not permitted"
    assert kind == "invalid_yaml"
    return yaml.safe_dump(params) + f"{key[0]}: [unclosed\n", r"not valid YAML"


@pytest.mark.parametrize("command", list(PARAMS_COMMANDS))
@pytest.mark.parametrize("kind", ("unknown_key", "wrong_type", "unknown_section", "invalid_yaml"))
def test_params_problem(kind, command, base, tmp_path):
    argv, key = PARAMS_COMMANDS[command]
    text, message = _break_params(yaml.safe_load((demo_params_file()).read_text()), kind, key)
    params = tmp_path / "params.yaml"
    params.write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    subst = {"RAW": str(base["raw"]), "SEL": str(base["selected"]), "OUT": str(out)}
    args = [re.sub(r"RAW|SEL|OUT", lambda m: subst[m.group(0)], a) for a in argv] + ["--params", str(params)]
    tool, name = command.split()
    proc = run_aslfs(name, *args) if tool == "aslfs" else run_stage(name, *args)
    line = error_line(proc, f"{tool} {name}: error: ")
    assert str(params) in line and re.search(message, line), line
    assert list(out.iterdir()) == []  # nothing was started


# ========================================================================================== 5. unwritable outputs
@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    from tests.training.fixtures import make_store

    return make_store(tmp_path_factory.mktemp("train"), n=16, participants=4)


def _blocked_output(kind: str, tmp_path: Path) -> Path:
    """A parent folder that cannot receive the output."""
    if kind == "parent_is_a_file":
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where a folder should be\n")
        return blocker
    blocker = tmp_path / "readonly"
    blocker.mkdir()
    blocker.chmod(0o555)
    try:
        (blocker / "probe").mkdir()
    except PermissionError:
        return blocker
    blocker.chmod(0o755)
    pytest.skip("this process writes into read-only folders (root); the not-a-directory case covers the path")


@pytest.mark.parametrize("command", ("select", "normalize", "folds", "predict", "train", "stage normalize"))
@pytest.mark.parametrize("kind", ("parent_is_a_file", "read_only_directory"))
def test_unwritable_output(kind, command, base, tflite, train_data, tmp_path):
    blocker = _blocked_output(kind, tmp_path)
    try:
        target = blocker / "deeper" / "out"
        argv = {
            "select": ("select", base["raw"], target, "--params", demo_params_file()),
            "normalize": ("normalize", base["selected"], target),
            "folds": ("folds", base["selected"], target / "folds.csv", "--params", demo_params_file(),
                      "--n-folds", "2"),
            "predict": ("predict", tflite, base["raw"], "--out", target / "pred.csv"),
            "train": ("train", "1", "0", "1", *train_data, target, "--no-track", "--params", demo_params_file()),
            "stage normalize": (base["selected"], target),  # inside a Prefect flow run
        }[command]
        if command.startswith("stage "):
            line = error_line(run_stage(command.split()[1], *argv), f"{command}: error: ")
        else:
            line = error_line(run_aslfs(*argv), f"aslfs {command}: error: ")
        assert str(blocker) in line, line
        assert re.search(r"not a directory|permission denied|not permitted|read-only", line, re.I), line
    finally:
        blocker.chmod(0o755) if blocker.is_dir() else None


# ============================================================================ 6. previous outputs survive a failure
def _break_second_shard(store: Path) -> None:
    (store / "shards" / "2.npy").write_bytes(b"\x93NUMPY garbage, not an array\n")


@pytest.mark.parametrize("command", ("aslfs select", "aslfs normalize", "aslfs folds", "aslfs predict",
                                     "stage select"))
def test_failed_run_keeps_previous_output(command, base, tflite, tmp_path):
    """Each command fails part-way through (after some of its output was produced) over an earlier run's output:
    that output is byte-identical afterwards and no temporary sibling is left behind."""
    from aslfs.data.normalize import normalize_store

    raw = copy_raw(base, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    tool, name = command.split()
    if name == "select":  # file 1 is selected into the new store, then file 2 fails
        BAD_FILES["corrupt_pages"].make(raw / BAD_REL)
        out = work / "selected"
        shutil.copytree(base["selected"], out)
        args = (raw, out, "--params", demo_params_file()) + (("--on-invalid", "error") if tool == "aslfs" else ())
        if tool == "stage":  # the stage reads on_invalid from params.yaml
            params = yaml.safe_load((demo_params_file()).read_text())
            params["select"]["on_invalid"] = "error"
            (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
            args = (raw, out, "--params", tmp_path / "params.yaml")
    elif name == "normalize":  # shard 1 is normalised into the new store, then shard 2 cannot be read
        out = work / "normalized"
        normalize_store(base["selected"], out)
        src = tmp_path / "selected"
        shutil.copytree(base["selected"], src)
        _break_second_shard(src)
        args = (src, out)
    elif name == "folds":  # the index is read, then the split is impossible
        out = work / "folds.csv"
        assert run_aslfs("folds", base["selected"], out, "--params", demo_params_file(),
                         "--n-folds", "2").returncode == 0
        args = (base["selected"], out, "--params", demo_params_file(), "--n-folds", "50")
    else:  # every sequence of file 1 and 2 is predicted, then a listed sequence turns out to have no rows
        out = work / "pred.csv"
        out.write_text(PREVIOUS_CSV)
        META_CASES["csv_id_missing_from_parquet"][0](raw, base["arrays"])
        args = (tflite, raw, "--out", out)
    before = snapshot(out)
    proc = run_aslfs(name, *args) if tool == "aslfs" else run_stage(name, *args)
    error_line(proc, f"{tool} {name}: error: ")
    assert snapshot(out) == before
    assert leftovers(work) == []
