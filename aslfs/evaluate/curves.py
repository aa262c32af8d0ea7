"""What the ensemble members' training runs say about an evaluation: their training curves, and whether a member was
trained on the held-out fold (the score is then optimistic)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from aslfs.runs import Run


def training_curves(runs: Sequence[Run]) -> pd.DataFrame:
    """The ``history.csv`` of each run, stacked with a ``run`` column (the run's name).

    A member without a history (a standalone ``.keras`` file, e.g. an imported checkpoint) contributes no curve.
    """
    frames = []
    for run in runs:
        history = run.history()
        if history is None:
            continue  # no training history: nothing to plot for this member
        frames.append(history.assign(run=run.name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run"])


def trained_on_heldout(runs: Sequence[Run], fold: int) -> int | None:
    """1 when some member was trained on the sequences of ``fold``, 0 when none was, ``None`` when no member records
    its fold (standalone model files)."""
    folds = [run.fold for run in runs if run.fold is not None]
    if not folds:
        return None
    # a member validated on fold k never saw fold k; any other member (a full fit, fold -1, included) did
    return int(any(f != int(fold) for f in folds))
