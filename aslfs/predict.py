"""``aslfs predict``: phrases for a competition-format directory or one landmark parquet file, from the TFLite file.

Predictions come from :class:`aslfs.export.runtime.TFLiteRecognizer` (the ``serving_default`` signature, read the way
the Kaggle harness reads it), so they are exactly what the submission returns. The model may be a submission folder,
a ``.tflite`` file or an MLflow model URI (``models:/asl-fingerspelling@champion``).

Inputs:

- a **competition directory** (``train.csv`` and/or ``supplemental_metadata.csv`` plus the landmark files they
  list): every listed sequence, in csv order; the csv phrases are the labels;
- one **parquet file**: every sequence in it, in file order, without labels.

Output CSV: ``sequence_id,phrase``; with labels also ``label`` and ``score`` (per sequence
``(len(label) − Lev) / len(label)``), and the corpus competition score is returned.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from aslfs.atomic import write_csv
from aslfs.errors import DataError


@dataclass(frozen=True)
class PredictResult:
    out_csv: str
    sequences: int
    seconds: float
    score: float | None = None  # competition score when labels exist

    def to_dict(self) -> dict:
        return asdict(self)


def iter_input(source: str | Path) -> tuple[Iterator[tuple[int, object, str | None]], int | None]:
    """``((sequence_id, frames (T, 390), label or None) iterator, number of sequences or None)`` for ``source``."""
    from aslfs.data.metadata import read_metadata, resolve_path
    from aslfs.data.reader import iter_file_sequences

    source = Path(source)
    if source.is_file():
        if source.suffix != ".parquet":
            raise DataError(f"{source}: expected a competition directory or a .parquet landmark file")
        return ((sid, frames, None) for sid, frames in iter_file_sequences(source)), None
    if not source.is_dir():
        raise DataError(f"{source}: no such directory or parquet file")
    meta = read_metadata(source)
    labels = dict(zip(meta["sequence_id"].astype(int), meta["phrase"].astype(str)))

    def items():
        for rel, group in meta.groupby("path", sort=False):
            path = resolve_path(source, rel)
            if path is None:
                raise DataError(f"{source}: path {rel!r} leaves the data directory")
            if not path.is_file():
                raise DataError(f"{path}: landmark file listed in the metadata is missing")
            wanted = set(group["sequence_id"].astype(int))
            found = set()
            for sid, frames in iter_file_sequences(path):
                if sid in wanted:
                    found.add(sid)
                    yield sid, frames, labels[sid]
            missing = wanted - found
            if missing:
                raise DataError(f"{path}: sequence {min(missing)} is listed in the metadata but has no rows")

    return items(), len(meta)


def predict(model: str | Path, source: str | Path, out_csv: str | Path, threads: int = 2,
            progress: bool | None = None) -> PredictResult:
    """Predict every sequence of ``source`` with the TFLite ``model`` and write ``out_csv``.

    Args:
        model: submission folder, ``.tflite`` file or MLflow model URI.
        source: competition directory or one landmark parquet file.
        out_csv: output csv path (parent folders created; replaced atomically, so a failed run leaves a previous
            file as it was).
        threads: interpreter threads. Defaults to ``2``.
        progress: show a progress bar (``None``: only on a terminal).
    """
    from rapidfuzz.distance import Levenshtein
    from tqdm.auto import tqdm

    from aslfs.export.runtime import TFLiteRecognizer
    from aslfs.metrics import competition_score
    from aslfs.registry import resolve_tflite

    recognizer = TFLiteRecognizer(resolve_tflite(model), threads=threads)
    items, total = iter_input(source)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)  # an unwritable destination fails before the work
    rows = []
    start = time.perf_counter()
    disable = None if progress is None else not progress
    for sid, frames, label in tqdm(items, total=total, disable=disable, desc="predict", unit="seq"):
        rows.append((int(sid), recognizer.predict(frames), label))
    seconds = time.perf_counter() - start
    table = pd.DataFrame(rows, columns=["sequence_id", "phrase", "label"])
    has_labels = bool(len(table)) and table["label"].notna().all()
    score = None
    if has_labels:
        table["score"] = [
            (len(ref) - Levenshtein.distance(ref, pred)) / max(len(ref), 1)
            for ref, pred in zip(table["label"], table["phrase"])
        ]
        if sum(len(r) for r in table["label"]):
            score = competition_score(list(table["label"]), list(table["phrase"]))
    else:
        table = table.drop(columns="label")
    write_csv(out_csv, table, float_format="%.6f")  # a previous csv is never half-lost
    return PredictResult(out_csv=str(out_csv), sequences=len(table), seconds=round(seconds, 3), score=score)
