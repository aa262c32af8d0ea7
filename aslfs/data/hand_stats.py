"""Hand statistics of a competition-format directory (``aslfs synth-stats DIR``): how large the dominant hand is,
where it is held, how fast it and its fingers move, how deep it is, and how often it is detected per character.

The same code measures real recordings and the embedded dataset, so the generator can be calibrated against the
real figures (README "The embedded dataset"). Definitions (coordinates are MediaPipe's image units: x, y in 0..1 of
the image width and height, y down; z in the hand's own depth units):

- A hand is *visible* in a frame when all 63 coordinates of its 21 landmarks are finite (MediaPipe writes a hand
  completely or not at all). The *dominant hand* of a sequence is the hand visible in more of its frames (the right
  hand on a tie). Only frames where the dominant hand is visible count; the other hand is never measured.
- *hand size*: the distance in x, y between the wrist (hand landmark 0) and the middle finger's MCP (landmark 9).
- *wrist y*, *wrist x*: the wrist's image coordinates (0 = top / left of the image).
- *fingertip motion*: between two consecutive visible frames of a sequence (frames in between where the hand is
  missing are skipped, so a gap counts as one step): the mean over the 5 fingertips (landmarks 4, 8, 12, 16, 20) of
  the x, y displacement of (fingertip − wrist), divided by the mean hand size of the two frames.
- *wrist motion*: the x, y displacement of the wrist between two consecutive visible frames, divided by the mean
  hand size of the two frames.
- *z range*: (max z − min z) over the 21 hand landmarks of a frame, divided by that frame's hand size.
- *visible frames per character*: per sequence, the dominant hand's visible frames divided by the phrase's length
  (a sequence without any visible hand counts 0).

Per-frame statistics are pooled over every visible frame of every sequence, motions over every pair of consecutive
visible frames, and the last row over sequences; each row reports its 10th percentile, median and 90th percentile.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

import numpy as np

from aslfs.data.metadata import read_metadata, resolve_path
from aslfs.data.reader import iter_file_sequences
from aslfs.errors import DataError
from aslfs.landmarks import AXES, HAND_FINGERTIPS, HAND_MIDDLE_MCP, HAND_WRIST

HANDS = ("left_hand", "right_hand")
#: The 126 columns read: for each hand (left, right), x of its 21 landmarks, then y, then z.
HAND_COLUMNS: tuple[str, ...] = tuple(f"{a}_{hand}_{i}" for hand in HANDS for a in AXES for i in range(21))

#: Statistic key -> label, in table order.
ROWS: dict[str, str] = {
    "hand_size": "hand size",
    "wrist_y": "wrist y (0 = top of the image)",
    "wrist_x": "wrist x",
    "fingertip_motion": "fingertip motion per visible frame, wrist-relative, in hand sizes",
    "wrist_motion": "wrist motion per visible frame, in hand sizes",
    "z_range": "z range within a frame, in hand sizes",
    "visible_per_char": "frames with the dominant hand visible, per character",
}
PERCENTILES = {"p10": 10.0, "median": 50.0, "p90": 90.0}


def sequence_measures(frames: np.ndarray, phrase_len: int) -> dict[str, np.ndarray]:
    """The raw measures of one sequence.

    Args:
        frames: (T, 126) in :data:`HAND_COLUMNS` order (NaN where a hand is not detected).
        phrase_len: characters of the sequence's phrase (> 0).
    Returns:
        Per statistic of :data:`ROWS` an array of values: one per visible frame (hand size, wrist y/x, z range),
        per pair of consecutive visible frames (the motions), and one value (visible frames per character).
    """
    pts = np.asarray(frames, np.float64).reshape(len(frames), 2, 3, 21).transpose(0, 1, 3, 2)  # (T, hand, 21, xyz)
    visible = np.isfinite(pts).all(axis=(2, 3))  # (T, 2)
    counts = visible.sum(axis=0)
    dom = 0 if counts[0] > counts[1] else 1
    hand = pts[visible[:, dom], dom]  # (V, 21, 3)
    xy = hand[..., :2]
    size = np.linalg.norm(xy[:, HAND_MIDDLE_MCP] - xy[:, HAND_WRIST], axis=-1)
    out = {
        "hand_size": size,
        "wrist_y": xy[:, HAND_WRIST, 1],
        "wrist_x": xy[:, HAND_WRIST, 0],
        "z_range": (hand[..., 2].max(axis=1) - hand[..., 2].min(axis=1)) / size,
        "visible_per_char": np.array([len(hand) / phrase_len], np.float64),
    }
    pair_size = 0.5 * (size[1:] + size[:-1])
    rel = xy[:, list(HAND_FINGERTIPS)] - xy[:, HAND_WRIST, None]  # (V, 5, 2)
    out["fingertip_motion"] = np.linalg.norm(np.diff(rel, axis=0), axis=-1).mean(axis=1) / pair_size
    out["wrist_motion"] = np.linalg.norm(np.diff(xy[:, HAND_WRIST], axis=0), axis=-1) / pair_size
    return out


def summarize(measures: Iterable[dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Pool the measures of many sequences: per statistic ``{p10, median, p90, n}`` (NaN percentiles when empty)."""
    pooled: dict[str, list[np.ndarray]] = {k: [] for k in ROWS}
    for m in measures:
        for k in ROWS:
            pooled[k].append(m[k])
    table = {}
    for k in ROWS:
        values = np.concatenate(pooled[k]) if pooled[k] else np.zeros(0)
        values = values[np.isfinite(values)]
        row = {name: (float(np.percentile(values, q)) if len(values) else float("nan"))
               for name, q in PERCENTILES.items()}
        row["n"] = int(len(values))
        table[k] = row
    return table


def dataset_stats(data_dir: str | Path, max_sequences: int | None = None) -> dict:
    """The statistics of a competition-format directory.

    Args:
        data_dir: holds ``train.csv`` and/or ``supplemental_metadata.csv`` and the parquet files they list.
        max_sequences: measure only the first N sequences of the metadata (train rows first, csv order).
    Returns:
        ``{"data_dir", "sequences", "participants", "rows": {statistic: {p10, median, p90, n}}}``.
    Raises:
        DataError: a missing or malformed csv or parquet file, a path leaving the directory, a listed sequence
            without rows in its file, an empty phrase (one line naming the file and the problem).
    """
    data_dir = Path(data_dir)
    meta = read_metadata(data_dir)
    if max_sequences is not None:
        meta = meta.iloc[:max_sequences]
    measures = []
    for rel, rows in meta.groupby("path", sort=False):
        path = resolve_path(data_dir, rel)
        if path is None:
            raise DataError(f"{data_dir}: path {rel!r} leaves the data directory")
        wanted = {int(s): str(p) for s, p in zip(rows.sequence_id, rows.phrase)}
        with closing(iter_file_sequences(path, HAND_COLUMNS)) as sequences:
            for sid, frames in sequences:
                phrase = wanted.pop(sid, None)
                if phrase is None:
                    continue
                if not phrase:
                    raise DataError(f"{path}: sequence {sid} has an empty phrase in the metadata")
                measures.append(sequence_measures(frames, len(phrase)))
                if not wanted:
                    break
        if wanted:
            raise DataError(f"{path}: sequence {next(iter(wanted))} is listed in the metadata but has no rows in "
                            "the file")
    return {"data_dir": str(data_dir), "sequences": len(measures), "participants": int(meta.participant_id.nunique()),
            "rows": summarize(measures)}


def format_table(stats: dict) -> str:
    """The statistics as a Markdown table (p10 / median / p90 per row)."""
    lines = [f"{stats['data_dir']}: {stats['sequences']} sequences, {stats['participants']} participants",
             "", "| statistic | p10 | median | p90 | n |", "|---|---|---|---|---|"]
    for k, label in ROWS.items():
        r = stats["rows"][k]
        lines.append(f"| {label} | {r['p10']:.3f} | {r['median']:.3f} | {r['p90']:.3f} | {r['n']} |")
    return "\n".join(lines)
