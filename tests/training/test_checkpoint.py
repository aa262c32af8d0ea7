"""Atomic checkpoints: save, load, and recovery from a kill at every point of the swap."""

import json
import os

import pytest

from aslfs.training import checkpoint as ckpt


class FakeModel:
    def __init__(self, payload: bytes):
        self.payload = payload

    def save(self, path):
        with open(path, "wb") as fh:
            fh.write(self.payload)


def payload(out):
    return (out / "checkpoint" / "last.keras").read_bytes()


def test_save_and_load(tmp_path):
    assert ckpt.load_state(tmp_path) is None
    state = ckpt.TrainState(epoch=3, seed=7, mlflow_run_id="abc", best_score=0.5, history=[{"epoch": 3, "loss": 1.0}])
    ckpt.save_checkpoint(tmp_path, FakeModel(b"e3"), state)
    got = ckpt.load_state(tmp_path)
    assert got == state
    state.epoch = 4
    ckpt.save_checkpoint(tmp_path, FakeModel(b"e4"), state)
    assert ckpt.load_state(tmp_path).epoch == 4 and payload(tmp_path) == b"e4"
    assert sorted(os.listdir(tmp_path)) == ["checkpoint"]  # no temporary leftovers


def test_recover_between_renames(tmp_path):
    ckpt.save_checkpoint(tmp_path, FakeModel(b"e1"), ckpt.TrainState(epoch=1))
    # simulate a kill after "checkpoint -> checkpoint.old" and before "checkpoint.new -> checkpoint"
    new = tmp_path / "checkpoint.new"
    new.mkdir()
    (new / "last.keras").write_bytes(b"e2")
    (new / "state.json").write_text(ckpt.TrainState(epoch=2).to_json())
    os.rename(tmp_path / "checkpoint", tmp_path / "checkpoint.old")
    assert ckpt.load_state(tmp_path).epoch == 2 and payload(tmp_path) == b"e2"
    assert not (tmp_path / "checkpoint.old").exists() and not new.exists()


def test_incomplete_new_checkpoint_is_ignored(tmp_path):
    ckpt.save_checkpoint(tmp_path, FakeModel(b"e1"), ckpt.TrainState(epoch=1))
    new = tmp_path / "checkpoint.new"
    new.mkdir()
    (new / "last.keras").write_bytes(b"half")  # killed before state.json was written
    assert ckpt.load_state(tmp_path).epoch == 1 and payload(tmp_path) == b"e1"
    assert not new.exists()
    # killed after moving the old one away but before the new one was complete
    new.mkdir()
    (new / "last.keras").write_bytes(b"half")
    os.rename(tmp_path / "checkpoint", tmp_path / "checkpoint.old")
    assert ckpt.load_state(tmp_path).epoch == 1 and payload(tmp_path) == b"e1"


def test_state_json_is_plain_json(tmp_path):
    ckpt.save_checkpoint(tmp_path, FakeModel(b"x"), ckpt.TrainState(epoch=2, extra={"run_hash": "h"}))
    data = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert data["epoch"] == 2 and data["extra"] == {"run_hash": "h"}


def test_failed_save_keeps_previous(tmp_path):
    ckpt.save_checkpoint(tmp_path, FakeModel(b"e1"), ckpt.TrainState(epoch=1))

    class Broken:
        def save(self, path):
            raise OSError("disk full")

    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, Broken(), ckpt.TrainState(epoch=2))
    assert ckpt.load_state(tmp_path).epoch == 1 and payload(tmp_path) == b"e1"
