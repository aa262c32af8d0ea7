"""The ensemble members of an export: trained runs (:mod:`aslfs.runs`) or freshly initialised models of a preset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aslfs.runs import expand_runs, load_models


def trained_members(paths: Sequence[str | Path]) -> tuple[list, list[str]]:
    """The models of the runs named by ``paths`` (:func:`aslfs.runs.expand_runs`: run folders, folders of them,
    ``.keras`` files) and their sources (the run paths, in the same order)."""
    runs = expand_runs(paths)
    return load_models(runs), [str(run.path) for run in runs]


def untrained_members(preset: str, count: int, seed: int = 0) -> list:
    """``count`` freshly initialised members of a model preset (seeds ``seed``, ``seed + 1``, ...): same graph, same
    size and speed as trained ones, for checking size and latency before training."""
    import keras

    from aslfs.models.config import get_config
    from aslfs.models.fingerspeller import FingerSpeller

    if count < 1:
        raise ValueError(f"ensemble size must be >= 1, got {count}")
    config = get_config(preset)
    members = []
    for i in range(count):
        keras.utils.set_random_seed(seed + i)
        members.append(FingerSpeller(config, name=f"member_{i}"))
    return members
