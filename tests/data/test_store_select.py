"""Sequence store (shards + index), the select stage (round trip, report, policy on invalid data, workers) and the
normalize stage."""

import json
import multiprocessing
import pickle

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from aslfs.config import SelectParams
from aslfs.data import metadata
from aslfs.data.kaggle_format import write_landmark_file
from aslfs.data.normalize import normalize_np, normalize_store
from aslfs.data.select import select
from aslfs.atomic import atomic_dir
from aslfs.data.store import INDEX_COLUMNS, SequenceStore, ShardWriter, write_index, write_meta, write_shard
from aslfs.errors import DataError
from aslfs.landmarks import ALL_COLUMNS
from tests.helpers import Seq, make_frames, random_dataset, selected, write_dataset

SKIP = SelectParams(on_invalid="skip")
STRICT = SelectParams(on_invalid="error")


# ---------------------------------------------------------------------------------------------------------- the store

def _tiny_store(path, arrays, frame_shape=(390,)):
    with atomic_dir(path) as tmp:
        offsets = write_shard(tmp / "shards" / "a.npy", arrays, frame_shape)
        n = len(arrays)
        write_index(tmp, pd.DataFrame({
            "file_id": 1, "sequence_id": np.arange(100, 100 + n), "participant_id": 7, "phrase": "hi",
            "seq_len": [len(a) for a in arrays], "is_supplemental": False, "shard": "a", "offset": offsets}))
        write_meta(tmp, "selected", frame_shape)


def test_shard_writer_streams_a_valid_npy(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(t, 130, 3)).astype(np.float32) for t in (3, 1, 5)]
    with ShardWriter(tmp_path / "s.npy", (130, 3)) as w:
        offsets = [w.append(a) for a in arrays]
    assert offsets == [0, 3, 4]
    full = np.load(tmp_path / "s.npy", allow_pickle=False)  # a plain np.load reads it: the header is right
    assert full.shape == (9, 130, 3) and full.dtype == np.float32
    np.testing.assert_array_equal(full, np.concatenate(arrays))


def test_shard_writer_removes_partial_file_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path / "s.npy", (390,)) as w:
            w.append(np.zeros((2, 390), np.float32))
            raise RuntimeError("boom")
    assert not (tmp_path / "s.npy").exists()
    with pytest.raises(ValueError):
        with ShardWriter(tmp_path / "s.npy", (390,)) as w:
            w.append(np.zeros((2, 391), np.float32))


def test_store_load_equals_input_and_pickles(tmp_path):
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(t, 390)).astype(np.float32) for t in (4, 2, 7)]
    _tiny_store(tmp_path / "st", arrays)
    store = SequenceStore(tmp_path / "st")
    assert len(store) == 3 and list(store.index.columns) == list(INDEX_COLUMNS)
    for i, a in enumerate(arrays):
        got = store.load(i)
        np.testing.assert_array_equal(got, a)
        assert got.flags.writeable and got.flags.c_contiguous  # a private copy, not a view of the map
    np.testing.assert_array_equal(store.load_id(102), arrays[2])
    clone = pickle.loads(pickle.dumps(store))
    assert clone._maps == {}
    np.testing.assert_array_equal(clone.load(1), arrays[1])
    with pytest.raises(DataError):
        store.load_id(5)
    with pytest.raises(IndexError):
        store.load(3)


def _load_in_child(args):
    store, i = args
    return store.load(i).sum()


def test_store_is_usable_from_worker_processes(tmp_path):
    rng = np.random.default_rng(2)
    arrays = [rng.normal(size=(t, 390)).astype(np.float32) for t in (4, 2)]
    _tiny_store(tmp_path / "st", arrays)
    store = SequenceStore(tmp_path / "st")
    store.load(0)  # parent opened its maps before the fork
    with multiprocessing.get_context("fork").Pool(2) as pool:
        sums = pool.map(_load_in_child, [(store, 0), (store, 1)])
    np.testing.assert_allclose(sums, [a.sum() for a in arrays], rtol=1e-6)


def test_not_a_store(tmp_path):
    with pytest.raises(DataError) as err:
        SequenceStore(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_atomic_dir_keeps_old_output_on_error_and_replaces_it_completely(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "old.txt").write_text("1")
    with pytest.raises(KeyError):
        with atomic_dir(out) as tmp:
            (tmp / "new.txt").write_text("2")
            raise KeyError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (out / "old.txt").exists()
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ------------------------------------------------------------------------------------------------------ select

@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    meta, arrays = random_dataset(root, n_sequences=24, sequences_per_file=5, row_group_frames=9, seed=5)
    return root, meta, arrays


def test_select_round_trip(raw, tmp_path):
    root, meta, arrays = raw
    report = select(root, tmp_path / "sel", SKIP)
    store = SequenceStore(tmp_path / "sel")
    idx = store.index
    assert idx.sequence_id.tolist() == meta.sequence_id.tolist(), "index follows csv order (train, then supplemental)"
    assert idx.phrase.tolist() == meta.phrase.tolist()
    assert idx.is_supplemental.tolist() == meta.is_supplemental.tolist()
    assert idx.participant_id.tolist() == meta.participant_id.tolist()
    assert idx.shard.tolist() == [str(f) for f in meta.file_id]
    for i, sid in enumerate(idx.sequence_id):
        np.testing.assert_array_equal(store.load(i), selected(arrays[sid]))
        assert idx.seq_len.iat[i] == len(arrays[sid])
    assert report["sequences"] == 24 and report["files"] == 6 and report["skipped_total"] == 0
    assert report["frames"] == sum(len(a) for a in arrays.values())
    assert report["supplemental_sequences"] == 6
    on_disk = json.loads((tmp_path / "sel" / "report.json").read_text())
    assert on_disk["sequences"] == 24 and "seconds" not in on_disk
    assert sorted(p.name for p in (tmp_path / "sel" / "shards").iterdir()) == sorted(f"{f}.npy" for f in meta.file_id.unique())


def test_select_with_workers_gives_identical_output(raw, tmp_path):
    root, _, _ = raw
    select(root, tmp_path / "one", SKIP)
    select(root, tmp_path / "two", SelectParams(on_invalid="skip", workers=2))
    for rel in ["index.parquet", "report.json", "meta.json"] + [f"shards/{p.name}" for p in (tmp_path / "one" / "shards").iterdir()]:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel


def test_select_rerun_replaces_output_and_failure_keeps_it(raw, tmp_path):
    root, _, _ = raw
    out = tmp_path / "sel"
    select(root, out, SKIP)
    (out / "shards" / "stale.npy").write_bytes(b"x")
    select(root, out, SKIP)
    assert not (out / "shards" / "stale.npy").exists()
    with pytest.raises(DataError):
        select(tmp_path / "missing", out, SKIP)
    assert SequenceStore(out).index.shape[0] == 24
    assert [p.name for p in tmp_path.iterdir()] == ["sel"], "no temporary directory left behind"


def _messy(tmp_path):
    """A directory with one problem of each row-level kind, plus good sequences."""
    rng = np.random.default_rng(4)
    root = tmp_path / "raw"
    good = {i: make_frames(rng, 3 + i) for i in (1, 2, 3)}
    all_nan = np.full((4, len(ALL_COLUMNS)), np.nan, np.float32)
    seqs = [Seq(1, 1, "ok one", good[1]), Seq(2, 2, "bad\u00e9", good[2]), Seq(3, 1, "ok three", good[3]),
            Seq(4, 2, "ok", all_nan), Seq(5, 3, "q" * 40, make_frames(rng, 2)),
            Seq(6, 3, "fine", make_frames(rng, 2), file_id=2)]
    meta = write_dataset(root, seqs)
    # sequence 7 listed but absent from its file; sequence 8 listed with zero frames; sequence 9 only in the file;
    # sequence 10 escapes the data directory
    write_landmark_file(root / "train_landmarks" / "2.parquet",
                        [(6, seqs[-1].frames), (8, np.zeros((0, len(ALL_COLUMNS)), np.float32)),
                         (9, make_frames(rng, 2))])
    extra = pd.DataFrame([
        {"path": "train_landmarks/2.parquet", "file_id": 2, "sequence_id": 7, "participant_id": 3, "phrase": "x"},
        {"path": "train_landmarks/2.parquet", "file_id": 2, "sequence_id": 8, "participant_id": 3, "phrase": "x"},
        {"path": "../../etc/passwd", "file_id": 3, "sequence_id": 10, "participant_id": 3, "phrase": "x"}])
    pd.concat([meta.drop(columns="is_supplemental"), extra]).to_csv(root / "train.csv", index=False)
    return root, good


def test_skip_counts_every_problem(tmp_path):
    root, good = _messy(tmp_path)
    report = select(root, tmp_path / "sel", SKIP)
    sk = {k: v["sequence_ids"] for k, v in report["skipped"].items() if v["count"]}
    assert sk == {metadata.OOV_PHRASE: [2], metadata.LONG_PHRASE: [5], metadata.BAD_PATH: [10],
                  metadata.ALL_NAN: [4], metadata.NOT_IN_CSV: [9], metadata.MISSING_FROM_PARQUET: [7, 8]}
    assert report["skipped_total"] == 7 and report["sequences"] == 3
    store = SequenceStore(tmp_path / "sel")
    assert store.index.sequence_id.tolist() == [1, 3, 6]
    np.testing.assert_array_equal(store.load_id(3), selected(good[3]))
    assert all("\n" not in m for m in report["messages"]) and len(report["messages"]) == 7
    saved = json.loads((tmp_path / "sel" / "report.json").read_text())
    assert saved["skipped"][metadata.MISSING_FROM_PARQUET]["count"] == 2


def _one_problem(root, kind):
    """Two good sequences in train_landmarks/1.parquet plus exactly one problem of ``kind``."""
    rng = np.random.default_rng(7)
    seqs = [Seq(1, 1, "ok one", make_frames(rng, 3)), Seq(2, 2, "ok two", make_frames(rng, 4))]
    csv_extra, file_extra = [], []
    if kind == "oov":
        seqs.append(Seq(3, 1, "na\u00efve", make_frames(rng, 2)))
    elif kind == "long":
        seqs.append(Seq(3, 1, "w" * 32, make_frames(rng, 2)))
    elif kind == "all_nan":
        seqs.append(Seq(3, 1, "ok", np.full((5, len(ALL_COLUMNS)), np.nan, np.float32)))
    elif kind == "empty":
        seqs.append(Seq(3, 1, "ok", np.zeros((0, len(ALL_COLUMNS)), np.float32)))
    elif kind == "absent":
        csv_extra.append({"path": "train_landmarks/1.parquet", "file_id": 1, "sequence_id": 3, "participant_id": 1,
                          "phrase": "ok"})
    elif kind == "orphan":
        file_extra.append((3, make_frames(rng, 2)))
    elif kind == "escape":
        csv_extra.append({"path": "../1.parquet", "file_id": 9, "sequence_id": 3, "participant_id": 1, "phrase": "ok"})
    meta = write_dataset(root, seqs)
    if file_extra:
        write_landmark_file(root / "train_landmarks" / "1.parquet", [(s.sequence_id, s.frames) for s in seqs] + file_extra)
    if csv_extra:
        pd.concat([meta.drop(columns="is_supplemental"), pd.DataFrame(csv_extra)]).to_csv(root / "train.csv", index=False)


CASES = {"oov": (metadata.OOV_PHRASE, "train.csv"), "long": (metadata.LONG_PHRASE, "train.csv"),
         "all_nan": (metadata.ALL_NAN, "1.parquet"), "empty": (metadata.MISSING_FROM_PARQUET, "1.parquet"),
         "absent": (metadata.MISSING_FROM_PARQUET, "1.parquet"), "orphan": (metadata.NOT_IN_CSV, "1.parquet"),
         "escape": (metadata.BAD_PATH, "train.csv")}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_invalid_sequence_errors_or_is_counted(tmp_path, kind):
    reason, where = CASES[kind]
    root = tmp_path / "raw"
    _one_problem(root, kind)
    with pytest.raises(DataError) as err:
        select(root, tmp_path / "sel", STRICT)
    msg = str(err.value)
    assert "\n" not in msg and "sequence 3" in msg and where in msg, msg
    assert not (tmp_path / "sel").exists() and [p.name for p in tmp_path.iterdir()] == ["raw"]
    report = select(root, tmp_path / "sel", SKIP)
    assert {k: v["sequence_ids"] for k, v in report["skipped"].items() if v["count"]} == {reason: [3]}
    assert report["sequences"] == 2 and report["skipped_total"] == 1
    assert SequenceStore(tmp_path / "sel").index.sequence_id.tolist() == [1, 2]


def test_bad_file_is_an_error_or_a_counted_skip(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "raw"
    write_dataset(root, [Seq(1, 1, "a", make_frames(rng, 3)), Seq(2, 1, "b", make_frames(rng, 3), file_id=2),
                         Seq(3, 1, "c", make_frames(rng, 3), file_id=3)])
    (root / "train_landmarks" / "2.parquet").write_bytes(b"garbage")
    (root / "train_landmarks" / "3.parquet").unlink()
    with pytest.raises(DataError) as err:
        select(root, tmp_path / "sel", STRICT)
    assert "2.parquet" in str(err.value) and "\n" not in str(err.value)
    report = select(root, tmp_path / "sel", SKIP)
    assert report["skipped"][metadata.BAD_FILE]["sequence_ids"] == [2, 3]
    assert report["files"] == 1 and len(report["files_failed"]) == 2
    assert any("3.parquet" in m and "not found" in m for m in report["files_failed"])
    assert SequenceStore(tmp_path / "sel").index.sequence_id.tolist() == [1]


def test_missing_columns_in_one_file(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "raw"
    write_dataset(root, [Seq(1, 1, "a", make_frames(rng, 3))])
    path = root / "train_landmarks" / "1.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["z_right_hand_20"]), path)
    with pytest.raises(DataError) as err:
        select(root, tmp_path / "sel", STRICT)
    assert "1.parquet" in str(err.value) and "z_right_hand_20" in str(err.value)


def test_unlisted_parquet_files_are_reported(raw, tmp_path):
    root, _, _ = raw
    import shutil
    copy = tmp_path / "raw"
    shutil.copytree(root, copy)
    write_landmark_file(copy / "train_landmarks" / "777.parquet", [(1, make_frames(np.random.default_rng(0), 2))])
    report = select(copy, tmp_path / "sel", SKIP)
    assert report["unlisted_files"] == ["train_landmarks/777.parquet"] and report["sequences"] == 24


# ------------------------------------------------------------------------------------------------------ normalize

def test_normalize_store_equals_normalize_np(raw, tmp_path):
    root, meta, arrays = raw
    select(root, tmp_path / "sel", SKIP)
    # add an all-NaN-after-selection case by hand: a store with a sequence that is constant on every axis
    report = normalize_store(tmp_path / "sel", tmp_path / "norm")
    src, dst = SequenceStore(tmp_path / "sel"), SequenceStore(tmp_path / "norm")
    assert dst.frame_shape == (130, 3) and len(dst) == len(src) == 24
    assert dst.index.drop(columns="offset").equals(src.index.drop(columns="offset"))
    for i in range(len(src)):
        got = dst.load(i)
        assert got.shape == (src.index.seq_len.iat[i], 130, 3) and got.dtype == np.float32
        np.testing.assert_array_equal(got, normalize_np(src.load(i)))
        assert np.isfinite(got).all()
    assert report["sequences"] == 24 and report["all_zero_count"] == 0
    with pytest.raises(DataError):
        normalize_store(tmp_path / "norm", tmp_path / "norm2")  # a normalised store is not a selected one


def test_normalize_store_hand_values_and_all_zero(tmp_path):
    a = np.full((2, 390), np.nan, np.float32)
    a[0, 0], a[1, 0], a[0, 1] = 1.0, 3.0, 5.0  # x values 1, 3, 5: mean 3, population std sqrt(8/3)
    b = np.full((3, 390), 0.25, np.float32)  # constant on every axis: all zeros
    _tiny_store(tmp_path / "st", [a, b])
    report = normalize_store(tmp_path / "st", tmp_path / "norm")
    out = SequenceStore(tmp_path / "norm")
    s = np.sqrt(8 / 3)
    np.testing.assert_allclose(out.load(0)[:, 0, 0], [-2 / s, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out.load(0)[0, 1, 0], 2 / s, rtol=1e-6)
    assert (out.load(1) == 0).all()
    assert report["all_zero"] == [101]
