"""Atomic outputs (aslfs.atomic): the target changes only when the whole new content is written; a failure leaves
the previous file as it was and no temporary file behind."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from aslfs import atomic


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def test_failure_inside_the_block_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".json" and tmp.name.startswith(".metrics.tmp-")
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert _siblings(target) == ["metrics.json"]


def test_failing_writer_keeps_the_previous_csv(tmp_path):
    target = tmp_path / "table.csv"
    atomic.write_csv(target, pd.DataFrame({"a": [1, 2]}))

    class Broken(pd.DataFrame):
        def to_csv(self, path, **kwargs):
            with open(path, "w") as fh:
                fh.write("a\n9\n")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_csv(target, Broken({"a": [9]}))
    assert target.read_text() == "a\n1\n2\n"
    assert _siblings(target) == ["table.csv"]


def test_writes_replace_the_target_and_create_folders(tmp_path):
    target = tmp_path / "deep" / "out.json"
    assert atomic.write_json(target, {"b": 1, "a": [1.5]}) == target
    assert target.read_text() == '{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'
    atomic.write_text(target, "second")
    assert target.read_text() == "second"
    atomic.write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert json.loads(atomic.write_json(target, [1], indent=None).read_text()) == [1]
    assert _siblings(target) == ["out.json"]


def test_atomic_dir_keeps_the_previous_folder_on_error(tmp_path):
    out = tmp_path / "store"
    with atomic.atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(ValueError):
        with atomic.atomic_dir(out) as tmp:
            (tmp / "b.txt").write_text("2")
            raise ValueError
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    assert _siblings(out) == ["store"]
