"""Raw reader: round trip against the fixture writer, file order, row-group spans, and every validation error."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aslfs.data import metadata, reader
from aslfs.data.kaggle_format import write_landmark_file
from aslfs.errors import DataError
from aslfs.landmarks import SELECTED_COLUMNS
from tests.helpers import Seq, make_frames, random_dataset, selected, write_dataset


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg and msg, msg
    return msg


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    # 7-row row groups: most sequences span two or more row groups
    meta, arrays = random_dataset(root, n_sequences=12, sequences_per_file=4, row_group_frames=7, seed=3)
    return root, meta, arrays


def test_round_trip_values_and_order(corpus):
    root, meta, arrays = corpus
    for path, group in meta.groupby("path", sort=False):
        got = list(reader.iter_file_sequences(root / path, batch_rows=5))
        assert [sid for sid, _ in got] == list(group.sequence_id), "sequences in file order"
        for sid, frames in got:
            assert frames.dtype == np.float32 and frames.shape == (len(arrays[sid]), 390)
            np.testing.assert_array_equal(frames, selected(arrays[sid]))  # NaN == NaN here
    assert pq.ParquetFile(root / meta.path.iloc[0]).num_row_groups > 1


@pytest.mark.parametrize("batch_rows", [5, 64])
def test_read_ahead_gives_the_same_sequences(corpus, batch_rows):
    root, meta, arrays = corpus
    path = root / meta.path.iloc[0]
    ahead = list(reader.iter_file_sequences(path, batch_rows=batch_rows, read_ahead=True))
    inline = list(reader.iter_file_sequences(path, batch_rows=batch_rows, read_ahead=False))
    assert [s for s, _ in ahead] == [s for s, _ in inline] == list(meta[meta.path == meta.path.iloc[0]].sequence_id)
    for (sid, a), (_, b) in zip(ahead, inline):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, selected(arrays[sid]))  # still intact after the whole file was read
        assert a.dtype == np.float32 and a.flags.c_contiguous


def test_read_ahead_thread_stops_when_abandoned(corpus):
    import gc
    import threading

    root, meta, _ = corpus
    it = reader.iter_file_sequences(root / meta.path.iloc[0], batch_rows=3)
    next(it)
    assert any(t.name == "aslfs-read-ahead" for t in threading.enumerate())
    del it
    gc.collect()
    assert not any(t.name == "aslfs-read-ahead" for t in threading.enumerate())


def test_read_ahead_passes_errors_in_order():
    def items():
        yield 1
        yield 2
        raise DataError("f.parquet: broken")

    got = []
    with pytest.raises(DataError, match="broken"):
        for x in reader._read_ahead(items()):
            got.append(x)
    assert got == [1, 2]


def replace_column(path, name, make):
    """Rewrite the parquet file at ``path`` with column ``name`` replaced by ``make(old_column)``."""
    table = pq.read_table(path)
    i = table.schema.get_field_index(name)
    pq.write_table(table.set_column(i, name, make(table.column(i))), path)


def test_null_coordinates_read_as_nan(tmp_path):
    rng = np.random.default_rng(2)
    frames = make_frames(rng, 6)
    path = tmp_path / "f.parquet"
    write_landmark_file(path, [(3, frames)])
    replace_column(path, "y_right_hand_0", lambda _: pa.array([0.5, None, 0.25, None, None, 1.0], pa.float32()))
    (_, got), = reader.iter_file_sequences(path, batch_rows=4)
    assert got.dtype == np.float32
    expected = selected(frames)
    expected[:, SELECTED_COLUMNS.index("y_right_hand_0")] = [0.5, np.nan, 0.25, np.nan, np.nan, 1.0]
    np.testing.assert_array_equal(got, expected)


def test_selected_column_order_is_the_model_order(tmp_path):
    frames = np.arange(2 * 1629, dtype=np.float32).reshape(2, 1629)
    write_landmark_file(tmp_path / "f.parquet", [(5, frames)])
    (sid, got), = reader.iter_file_sequences(tmp_path / "f.parquet")
    from aslfs.landmarks import ALL_COLUMNS
    # value = row * 1629 + column index in the competition file: the reader must pick by name
    expected_cols = [ALL_COLUMNS.index(c) for c in SELECTED_COLUMNS[:3]]
    assert SELECTED_COLUMNS[:2] == ("x_face_0", "x_face_61")
    assert got[1, :3].tolist() == [1629 + j for j in expected_cols]


def test_rows_kept_in_file_order_even_if_frames_unsorted(tmp_path):
    rng = np.random.default_rng(0)
    frames = make_frames(rng, 9)
    path = tmp_path / "f.parquet"
    write_landmark_file(path, [(7, frames)])
    replace_column(path, "frame", lambda _: pa.array(rng.permutation(9).astype(np.int16)))
    (sid, got), = reader.iter_file_sequences(path)
    np.testing.assert_array_equal(got, selected(frames))


def test_float64_columns_are_accepted(tmp_path):
    rng = np.random.default_rng(1)
    frames = make_frames(rng, 5)
    path = tmp_path / "f.parquet"
    write_landmark_file(path, [(3, frames)])
    replace_column(path, "x_face_0", lambda column: column.cast(pa.float64()))
    (_, got), = reader.iter_file_sequences(path)
    np.testing.assert_array_equal(got, selected(frames))


def test_read_metadata_both_csvs(corpus):
    root, meta, _ = corpus
    got = metadata.read_metadata(root)
    assert list(got.columns) == ["path", "file_id", "sequence_id", "participant_id", "phrase", "is_supplemental"]
    assert got.sequence_id.tolist() == meta.sequence_id.tolist()
    assert got.is_supplemental.tolist() == meta.is_supplemental.tolist()
    assert got.is_supplemental.sum() == 3 and got.sequence_id.dtype == np.int64


def test_read_metadata_supplemental_only(tmp_path):
    rng = np.random.default_rng(0)
    write_dataset(tmp_path, [Seq(1, 1, "hello", make_frames(rng, 3), supplemental=True)])
    got = metadata.read_metadata(tmp_path)
    assert got.is_supplemental.tolist() == [True]


def test_load_sequence(corpus):
    root, meta, arrays = corpus
    sid = int(meta.sequence_id.iloc[5])
    info, frames = reader.load_sequence(root, sid)
    assert info["sequence_id"] == sid and info["phrase"] == meta.phrase.iloc[5]
    np.testing.assert_array_equal(frames, selected(arrays[sid]))
    with pytest.raises(DataError) as err:
        reader.load_sequence(root, 999)
    assert "sequence 999" in one_line(err)


# ------------------------------------------------------------------------------------------------- validation paths

def test_missing_csv(tmp_path):
    with pytest.raises(DataError) as err:
        metadata.read_metadata(tmp_path)
    assert str(tmp_path) in one_line(err) and "train.csv" in one_line(err)


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError) as err:
        metadata.read_metadata(tmp_path / "nope")
    assert "nope" in one_line(err)


def test_csv_missing_column(tmp_path):
    (tmp_path / "train.csv").write_text("path,file_id,sequence_id,phrase\na,1,2,hi\n")
    with pytest.raises(DataError) as err:
        metadata.read_metadata(tmp_path)
    assert "train.csv" in one_line(err) and "participant_id" in one_line(err)


def test_csv_non_integer_id(tmp_path):
    (tmp_path / "train.csv").write_text(
        "path,file_id,sequence_id,participant_id,phrase\nt/1.parquet,1,2,3,hi\nt/1.parquet,1,x7,3,ho\n")
    with pytest.raises(DataError) as err:
        metadata.read_metadata(tmp_path)
    msg = one_line(err)
    assert "train.csv" in msg and "line 3" in msg and "sequence_id" in msg and "x7" in msg


def test_duplicate_sequence_id(tmp_path):
    rng = np.random.default_rng(0)
    write_dataset(tmp_path, [Seq(4, 1, "a", make_frames(rng, 2)), Seq(4, 1, "b", make_frames(rng, 2), supplemental=True)])
    with pytest.raises(DataError) as err:
        metadata.read_metadata(tmp_path)
    assert "sequence 4" in one_line(err)


def test_missing_parquet_file(tmp_path):
    with pytest.raises(DataError) as err:
        list(reader.iter_file_sequences(tmp_path / "train_landmarks" / "9.parquet"))
    assert "9.parquet" in one_line(err) and "not found" in one_line(err)


def _write_table(path, drop=(), replace=None):
    rng = np.random.default_rng(0)
    write_landmark_file(path, [(1, make_frames(rng, 4)), (2, make_frames(rng, 3))])
    table = pq.read_table(path)
    for c in drop:
        table = table.drop_columns([c])
    if replace:
        name, values = replace
        table = table.set_column(table.schema.get_field_index(name), name, values)
    pq.write_table(table, path)


def test_missing_columns(tmp_path):
    path = tmp_path / "f.parquet"
    _write_table(path, drop=["x_face_61", "z_pose_21"])
    with pytest.raises(DataError) as err:
        list(reader.iter_file_sequences(path))
    msg = one_line(err)
    assert str(path) in msg and "x_face_61" in msg and "z_pose_21" in msg and "2 landmark column" in msg


def test_extra_columns_are_ignored(tmp_path):
    path = tmp_path / "f.parquet"
    rng = np.random.default_rng(0)
    frames = make_frames(rng, 4)
    write_landmark_file(path, [(1, frames)])
    table = pq.read_table(path).append_column("comment", pa.array(["x"] * 4))
    pq.write_table(table, path)
    (_, got), = reader.iter_file_sequences(path)
    np.testing.assert_array_equal(got, selected(frames))


def test_text_in_coordinate_column(tmp_path):
    path = tmp_path / "f.parquet"
    _write_table(path, replace=("y_left_hand_3", pa.array(["0.5"] * 7)))
    with pytest.raises(DataError) as err:
        list(reader.iter_file_sequences(path))
    msg = one_line(err)
    assert str(path) in msg and "y_left_hand_3" in msg and "string" in msg


def test_integer_coordinate_column_rejected(tmp_path):
    path = tmp_path / "f.parquet"
    _write_table(path, replace=("x_face_0", pa.array(np.zeros(7, np.int32))))
    with pytest.raises(DataError) as err:
        list(reader.iter_file_sequences(path))
    assert "x_face_0" in one_line(err) and "int32" in one_line(err)


def test_text_sequence_id_rejected(tmp_path):
    path = tmp_path / "f.parquet"
    _write_table(path, replace=("sequence_id", pa.array(["1"] * 4 + ["2"] * 3)))
    with pytest.raises(DataError) as err:
        list(reader.iter_file_sequences(path))
    assert "sequence_id" in one_line(err) and str(path) in one_line(err)


def test_corrupt_file(tmp_path):
    path = tmp_path / "f.parquet"
    path.write_bytes(b"PAR1 this is not parquet at all" * 10)
    with pytest.raises(DataError) as err:
        list(reader.iter_file_sequences(path))
    assert str(path) in one_line(err) and "parquet" in one_line(err)


def test_truncated_file(tmp_path):
    path = tmp_path / "f.parquet"
    _write_table(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        list(reader.iter_file_sequences(path))
    assert str(path) in one_line(err)


def test_corrupt_pages_fail_with_one_line(tmp_path):
    """Footer intact, data pages overwritten: decoding fails part-way and still names the file."""
    path = tmp_path / "f.parquet"
    rng = np.random.default_rng(0)
    write_landmark_file(path, [(1, make_frames(rng, 50))])
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    data[4: len(data) - footer] = rng.integers(0, 256, len(data) - footer - 4, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        list(reader.iter_file_sequences(path))
    assert str(path) in one_line(err)


def test_non_contiguous_sequence(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "f.parquet"
    write_landmark_file(path, [(1, make_frames(rng, 2)), (2, make_frames(rng, 2)), (1, make_frames(rng, 2))])
    with pytest.raises(DataError) as err:
        list(reader.iter_file_sequences(path))
    assert "sequence 1" in one_line(err) and "contiguous" in one_line(err)


@pytest.mark.parametrize("phrase,reason", [("caf\u00e9", metadata.OOV_PHRASE), ("x" * 32, metadata.LONG_PHRASE),
                                           ("", metadata.EMPTY_PHRASE)])
def test_bad_phrases(tmp_path, phrase, reason):
    rng = np.random.default_rng(0)
    meta = write_dataset(tmp_path, [Seq(11, 1, "ok", make_frames(rng, 2)), Seq(12, 1, phrase, make_frames(rng, 2))])
    meta = metadata.read_metadata(tmp_path)
    with pytest.raises(DataError) as err:
        metadata.check_rows(meta, tmp_path, metadata.Validator("error"))
    assert "train.csv" in one_line(err) and "sequence 12" in one_line(err)
    v = metadata.Validator("skip")
    kept = metadata.check_rows(meta, tmp_path, v)
    assert kept.sequence_id.tolist() == [11]
    assert [(p.reason, p.sequence_id) for p in v.problems] == [(reason, 12)]


def test_phrase_of_31_characters_is_fine(tmp_path):
    rng = np.random.default_rng(0)
    write_dataset(tmp_path, [Seq(11, 1, "y" * 31, make_frames(rng, 2))])
    assert len(metadata.check_rows(metadata.read_metadata(tmp_path), tmp_path, metadata.Validator("error"))) == 1


def test_path_escaping_the_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "raw"
    meta = write_dataset(root, [Seq(11, 1, "ok", make_frames(rng, 2))], write_csv=False)
    write_landmark_file(tmp_path / "outside.parquet", [(12, make_frames(rng, 2))])
    rows = pd.concat([meta, pd.DataFrame([{"path": "../outside.parquet", "file_id": 5, "sequence_id": 12,
                                           "participant_id": 1, "phrase": "ok"}])])
    rows.drop(columns="is_supplemental").to_csv(root / "train.csv", index=False)
    meta = metadata.read_metadata(root)
    with pytest.raises(DataError) as err:
        metadata.check_rows(meta, root, metadata.Validator("error"))
    assert "sequence 12" in one_line(err) and "../outside.parquet" in one_line(err)
    assert metadata.resolve_path(root, "/etc/passwd") is None
    assert metadata.resolve_path(root, "train_landmarks/../train_landmarks/1.parquet") is not None
    with pytest.raises(DataError) as err:
        reader.load_sequence(root, 12)
    assert "leaves the data directory" in one_line(err)


def test_symlinked_files_inside_the_data_dir_are_followed(tmp_path):
    rng = np.random.default_rng(0)
    real = tmp_path / "elsewhere"
    write_dataset(real, [Seq(21, 1, "ok", make_frames(rng, 3))])
    root = tmp_path / "raw"
    root.mkdir()
    (root / "train.csv").symlink_to(real / "train.csv")
    (root / "train_landmarks").symlink_to(real / "train_landmarks", target_is_directory=True)
    info, frames = reader.load_sequence(root, 21)
    assert frames.shape == (3, 390) and info["phrase"] == "ok"
