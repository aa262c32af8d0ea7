"""The held-out sequences an evaluation scores: a selected store or a competition directory, optionally one fold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aslfs.errors import DataError


@dataclass(frozen=True)
class EvalItem:
    """One held-out sequence: raw frames ``(T, 390)`` in ``SELECTED_COLUMNS`` order and its label."""

    sequence_id: int
    frames: np.ndarray
    phrase: str
    participant_id: int = -1


def heldout_items(data: str | Path, folds_csv: str | Path | None = None, fold: int | None = None,
                  max_sequences: int = 0) -> tuple[Iterable[EvalItem], int]:
    """The held-out sequences to evaluate, as ``(items, count)``.

    Args:
        data: a *selected* sequence store (``aslfs.data.store``: raw ``(T, 390)`` frames) or a competition-format
            directory (its csv files).
        folds_csv: the fold table; with ``fold``, only the **non-supplemental** sequences of that fold are used
            (the trainer's validation rows). ``None``: every sequence of ``data``.
        fold: the held-out fold.
        max_sequences: keep the first ``max_sequences`` (0 = all).
    """
    data = Path(data)
    if (data / "index.parquet").is_file():
        from aslfs.data.store import SequenceStore

        store = SequenceStore(data)
        if store.frame_shape != (390,):
            raise DataError(f"{data}: frames of shape {store.frame_shape}; evaluation needs the selected store "
                            "(raw (T, 390) frames), not the normalised one")
        index = store.index.reset_index(drop=True).assign(position=lambda d: range(len(d)))
        loader = "store"
    elif data.is_dir():
        from aslfs.data.metadata import read_metadata

        index = read_metadata(data)
        loader = "raw"
    else:
        raise DataError(f"{data}: not a selected store or a competition directory")
    if folds_csv is not None and fold is not None:
        index = _fold_rows(index, folds_csv, int(fold))
    if max_sequences:
        index = index.head(int(max_sequences))
    if index.empty:
        raise DataError(f"{data}: no held-out sequences to evaluate")

    def from_store():
        for row in index.itertuples(index=False):
            yield EvalItem(int(row.sequence_id), store.load(int(row.position)), str(row.phrase),
                           int(row.participant_id))

    def from_raw():
        from aslfs.data.metadata import resolve_path
        from aslfs.data.reader import read_file_sequence

        for row in index.itertuples(index=False):
            path = resolve_path(data, row.path)
            if path is None:
                raise DataError(f"{data}: path {row.path!r} leaves the data directory")
            yield EvalItem(int(row.sequence_id), read_file_sequence(path, int(row.sequence_id)), str(row.phrase),
                           int(row.participant_id))

    return (from_store() if loader == "store" else from_raw()), len(index)


def _fold_rows(index: pd.DataFrame, folds_csv: str | Path, fold: int) -> pd.DataFrame:
    """The non-supplemental rows of ``index`` in ``fold`` of the fold table (the trainer's validation rows)."""
    folds_csv = Path(folds_csv)
    if not folds_csv.is_file():
        raise DataError(f"{folds_csv}: fold table not found")
    folds = pd.read_csv(folds_csv)
    for column in ("sequence_id", "fold"):
        if column not in folds.columns:
            raise DataError(f"{folds_csv}: no column {column}")
    chosen = set(folds.loc[folds["fold"] == fold, "sequence_id"].astype(int))
    if not chosen:
        raise DataError(f"{folds_csv}: fold {fold} holds no sequences")
    return index[index["sequence_id"].astype(int).isin(chosen) & ~index["is_supplemental"].astype(bool)]
