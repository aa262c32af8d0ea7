"""``train.min_hand_frames_per_char``: the 12th-place cleaning rule as a training filter (aslfs.training.tables)."""

import numpy as np
import pandas as pd
import pytest

from aslfs.config import TrainParams
from aslfs.data.store import SequenceStore, write_index, write_meta, write_shard
from aslfs.errors import ConfigError
from aslfs.landmarks import FACE, LEFT_HAND, RIGHT_HAND
from aslfs.training.tables import filter_hand_frames, hand_frame_counts
from aslfs.training.trainer import _hand_filter

#: (phrase, frames, frames with a hand): 4-character phrases, so rule 2 needs more than 8 hand frames
ROWS = [("abcd", 12, 9), ("abcd", 12, 8), ("abcd", 30, 0), ("ab", 6, 5)]


def _store(tmp_path) -> SequenceStore:
    rng = np.random.default_rng(0)
    arrays, rows = [], []
    for i, (phrase, t, hand) in enumerate(ROWS):
        x = np.zeros((t, 130, 3), np.float32)
        x[:, FACE] = rng.normal(size=(t, len(FACE), 3))  # the face is always there: it must not count
        frames = rng.choice(t, hand, replace=False)
        side = LEFT_HAND if i % 2 else RIGHT_HAND
        x[frames[:, None], side[None, :]] = rng.normal(size=(hand, len(side), 3))
        x[frames[: hand // 2, None], side[None, :3], 0] = 0.0  # a partly zero hand still counts
        arrays.append(x)
        rows.append({"file_id": 1, "sequence_id": 100 + i, "participant_id": 1, "phrase": phrase, "seq_len": t,
                     "is_supplemental": False, "shard": "1"})
    index = pd.DataFrame(rows)
    index["offset"] = write_shard(tmp_path / "store" / "shards" / "1.npy", arrays)
    write_index(tmp_path / "store", index)
    write_meta(tmp_path / "store", "normalized", (130, 3))
    return SequenceStore(tmp_path / "store")


def _table(store) -> pd.DataFrame:
    table = store.index[["sequence_id", "phrase", "seq_len"]].copy()
    table["store_pos"] = np.arange(len(table))
    return table


def test_hand_frames_are_counted_per_sequence(tmp_path):
    store = _store(tmp_path)
    assert hand_frame_counts(store, [0, 1, 2, 3]).tolist() == [9, 8, 0, 5]
    assert hand_frame_counts(store, [3, 0]).tolist() == [5, 9]


def test_the_rule_keeps_rows_with_more_hand_frames_than_the_threshold_per_character(tmp_path):
    store = _store(tmp_path)
    table = _table(store)
    assert filter_hand_frames(table, store, 2.0)["sequence_id"].tolist() == [100, 103]  # 9 > 8, 5 > 4
    assert filter_hand_frames(table, store, 2.25)["sequence_id"].tolist() == [103]  # 9 = 4 x 2.25 is not more
    assert filter_hand_frames(table, store, 0.0) is table  # off: the table itself
    assert len(filter_hand_frames(table, store, 1e-9)) == 3  # only the sequence without a hand goes


def test_the_trainer_refuses_a_threshold_that_drops_everything(tmp_path, capsys):
    store = _store(tmp_path)
    assert len(_hand_filter(_table(store), store, 2.0)) == 2
    assert "keeps 2 of 4 training rows" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="^train.min_hand_frames_per_char 10 drops every training row$"):
        _hand_filter(_table(store), store, 10.0)


def test_the_setting_defaults_to_off_and_rejects_negatives():
    assert TrainParams().min_hand_frames_per_char == 0.0
    with pytest.raises(ValueError):
        TrainParams(min_hand_frames_per_char=-1)
