"""The ``select`` stage: a competition-format directory → the selected store (docs/reference.md §1.3).

Each sequence becomes a float32 (T, 390) array in ``SELECTED_COLUMNS`` order, rows in file order, nothing else
changed (no NaN handling, no frame dropping, no normalisation). The output is a :mod:`aslfs.data.store` directory
with one shard per input parquet file, an index table, and ``report.json``.

Work splits per parquet file: :func:`select_file` streams one file into one shard and returns what it found, so
files can be processed by ``workers`` processes (or mapped by a Prefect flow) independently. :func:`select` runs
the metadata checks, maps :func:`select_file` over the files, and writes the index and the report. Whatever the
number of workers, the output is identical (the index follows csv order).

Invalid sequences follow ``SelectParams.on_invalid`` (see :mod:`aslfs.data.reader`): ``error`` stops at the first
with one line naming file and sequence; ``skip`` leaves them out and lists each one, by reason, in the report. A file
that cannot be read at all (missing, corrupt, wrong columns) is an error, or with ``skip`` all its listed sequences
are skipped under reason ``bad_file``.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from aslfs.atomic import atomic_dir, write_json
from aslfs.config import SelectParams
from aslfs.data import metadata, reader
from aslfs.data.kaggle_format import SPLITS
from aslfs.data.metadata import Problem, Validator
from aslfs.data.store import REPORT_FILE, SHARD_DIR, ShardWriter, shard_path, write_index, write_meta
from aslfs.errors import DataError
from aslfs.landmarks import SELECTED_COLUMNS

STORE_KIND = "selected"
FRAME_SHAPE = (len(SELECTED_COLUMNS),)
#: At most this many example messages go into the report (every skipped id is listed regardless).
MAX_MESSAGES = 50


def select_file(parquet_path: str | Path, shard_file: str | Path, expected_ids: list[int],
                on_invalid: str = "error", ignore_ids: list[int] = (), label: str | None = None) -> dict:
    """Stream one landmark file into one shard.

    Args:
        parquet_path: the landmark file.
        shard_file: the ``.npy`` shard to write (removed again if no sequence is kept).
        expected_ids: the sequence ids the metadata lists for this file (csv order).
        on_invalid: ``error`` or ``skip`` (see :class:`aslfs.data.metadata.Validator`).
        ignore_ids: ids listed in the metadata but already rejected (bad phrase): read past without a complaint.
        label: name of the file in messages (default: ``parquet_path``).

    Returns:
        dict with ``file`` (label), ``shard`` (name or None), ``rows`` {sequence_id: (offset, seq_len)},
        ``frames``, ``bytes`` (parquet file size), ``problems`` (list of :class:`Problem` as dicts).

    Raises:
        DataError: with ``on_invalid='error'``, the first problem.
    """
    path = Path(parquet_path)
    label = label or str(path)
    validate = Validator(on_invalid)
    expected = set(int(s) for s in expected_ids)
    ignore = set(int(s) for s in ignore_ids)
    rows: dict[int, tuple[int, int]] = {}
    flagged: set[int] = set()
    shard_file = Path(shard_file)
    try:
        with ShardWriter(shard_file, FRAME_SHAPE) as writer:
            for sid, frames in reader.iter_file_sequences(path):
                if sid not in expected:
                    if sid not in ignore:
                        validate(metadata.NOT_IN_CSV, label, sid,
                                 f"{label}: sequence {sid} is in the parquet file but in no metadata csv")
                    continue
                if not _any_finite(frames):
                    flagged.add(sid)
                    validate(metadata.ALL_NAN, label, sid,
                             f"{label}: sequence {sid}: all {len(frames)} frames are NaN in the 390 selected columns")
                    continue
                rows[sid] = (writer.append(frames), len(frames))
    except DataError as err:
        if on_invalid == "error":
            raise
        msg = str(err) if str(err).startswith(label) else f"{label}: {err}"
        problems = [Problem(metadata.BAD_FILE, label, sid, msg) for sid in expected_ids]
        return {"file": label, "shard": None, "rows": {}, "frames": 0, "bytes": _size(path),
                "problems": [asdict(p) for p in problems], "file_error": msg}
    for sid in expected_ids:
        if sid not in rows and sid not in flagged:
            validate(metadata.MISSING_FROM_PARQUET, label, sid,
                     f"{label}: sequence {sid} is listed in the metadata but has no rows in the file (absent or empty)")
    if not rows:
        shard_file.unlink(missing_ok=True)
    return {"file": label, "shard": shard_file.stem if rows else None, "rows": rows,
            "frames": int(sum(n for _, n in rows.values())), "bytes": _size(path),
            "problems": [asdict(p) for p in validate.problems], "file_error": None}


def _any_finite(frames: np.ndarray) -> bool:
    """``np.isfinite(frames).any()``, deciding on the first frame when it holds a finite value (nearly always)."""
    return bool(np.isfinite(frames[0]).any()) or bool(np.isfinite(frames).any())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _select_file_task(kwargs: dict) -> dict:
    return select_file(**kwargs)


def plan_files(raw_dir: str | Path, params: SelectParams) -> tuple[pd.DataFrame, list[dict], list[Problem], set[Path]]:
    """Metadata checks and the per-file work list.

    Returns:
        (valid metadata rows, one ``select_file`` kwargs dict per parquet file (without ``shard_file``),
        problems found in the metadata, the resolved paths of every parquet file the metadata names).
    """
    raw_dir = Path(os.path.normpath(raw_dir))
    meta = metadata.read_metadata(raw_dir)
    validate = Validator(params.on_invalid)
    good = metadata.check_rows(meta, raw_dir, validate, params.max_phrase_len)
    rejected = meta[~meta.index.isin(good.index)]
    tasks = []
    for rel, group in good.groupby("path", sort=False):
        tasks.append({
            "parquet_path": str(metadata.resolve_path(raw_dir, rel)),
            "expected_ids": [int(s) for s in group.sequence_id],
            "on_invalid": params.on_invalid,
            "ignore_ids": [int(s) for s in rejected.sequence_id[rejected.path == rel]],
            "label": str(raw_dir / rel),
            "file_id": int(group.file_id.iloc[0]),
        })
    listed = {p for p in (metadata.resolve_path(raw_dir, rel) for rel in meta.path.unique()) if p is not None}
    return good, tasks, validate.problems, listed


def _unlisted_files(raw_dir: Path, listed: set[Path]) -> list[str]:
    """Landmark files in the standard folders that no csv row names (reported, not read)."""
    found = []
    for folder in SPLITS.values():
        d = raw_dir / folder
        if d.is_dir():
            found += [p for p in sorted(d.glob("*.parquet")) if p not in listed]
    return [str(p.relative_to(raw_dir)) for p in found]


def select(raw_dir: str | Path, out_dir: str | Path, params: SelectParams) -> dict:
    """Raw competition directory → selected store at ``out_dir`` (replaced atomically).

    Args:
        raw_dir: competition-format directory (csv files + landmark folders).
        out_dir: store directory to (re)write.
        params: the ``select`` section (``on_invalid``, ``workers``, ``max_phrase_len``).

    Returns:
        The report written to ``<out_dir>/report.json``, plus ``seconds`` (wall time, not written).

    Raises:
        DataError: unusable metadata, or with ``on_invalid='error'`` the first invalid file or sequence.
    """
    start = time.perf_counter()
    raw_dir = Path(os.path.normpath(raw_dir))
    good, tasks, problems, listed = plan_files(raw_dir, params)
    with atomic_dir(out_dir) as tmp:
        (tmp / SHARD_DIR).mkdir()
        for t in tasks:
            t["shard_file"] = str(shard_path(tmp, str(t.pop("file_id"))))
        if params.workers > 1 and len(tasks) > 1:
            # spawn, not fork: the parent may already hold arrow's thread pool, which does not survive a fork
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(params.workers, len(tasks)), mp_context=ctx) as pool:
                results = list(pool.map(_select_file_task, tasks))
        else:
            results = [select_file(**t) for t in tasks]

        placed: dict[int, tuple[str, int, int]] = {}
        for res in results:
            for sid, (offset, n) in res["rows"].items():
                placed[int(sid)] = (res["shard"], offset, n)
            problems += [Problem(**p) for p in res["problems"]]
        index = good[good.sequence_id.isin(placed)].copy()
        index["shard"] = [placed[s][0] for s in index.sequence_id]
        index["offset"] = [placed[s][1] for s in index.sequence_id]
        index["seq_len"] = [placed[s][2] for s in index.sequence_id]
        write_index(tmp, index)
        write_meta(tmp, STORE_KIND, FRAME_SHAPE, columns="SELECTED_COLUMNS")
        report = build_report(raw_dir, params, index, results, problems, listed)
        write_json(tmp / REPORT_FILE, report, sort_keys=False)
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report


def build_report(raw_dir: Path, params: SelectParams, index: pd.DataFrame, results: list[dict],
                 problems: list[Problem], listed: set[Path]) -> dict:
    skipped = {r: {"count": 0, "sequence_ids": []} for r in metadata.REASONS}
    for p in problems:
        entry = skipped[p.reason]
        entry["count"] += 1
        if p.sequence_id is not None:
            entry["sequence_ids"].append(p.sequence_id)
    return {
        "on_invalid": params.on_invalid,
        "max_phrase_len": params.max_phrase_len,
        "files": sum(1 for r in results if r["file_error"] is None),
        "files_failed": [r["file_error"] for r in results if r["file_error"] is not None],
        "unlisted_files": _unlisted_files(raw_dir, listed),
        "sequences": int(len(index)),
        "train_sequences": int((~index.is_supplemental).sum()),
        "supplemental_sequences": int(index.is_supplemental.sum()),
        "frames": int(index.seq_len.sum()),
        "parquet_bytes": int(sum(r["bytes"] for r in results)),
        "skipped_total": len(problems),
        "skipped": skipped,
        "messages": [p.message for p in problems[:MAX_MESSAGES]],
    }


def format_report(report: dict, out_dir: str | Path | None = None) -> str:
    """One human-readable paragraph of a select report."""
    line = (f"selected {report['sequences']} sequences ({report['train_sequences']} train, "
            f"{report['supplemental_sequences']} supplemental), {report['frames']} frames from {report['files']} files")
    if "seconds" in report and report["seconds"] > 0:
        s = report["seconds"]
        line += f" in {s:.1f} s ({report['sequences'] / s:.0f} seq/s, {report['parquet_bytes'] / 1e6 / s:.0f} MB/s)"
    lines = [line]
    if report["skipped_total"]:
        parts = ", ".join(f"{k} {v['count']}" for k, v in report["skipped"].items() if v["count"])
        where = f" (listed in {Path(out_dir) / REPORT_FILE})" if out_dir else ""
        lines.append(f"skipped {report['skipped_total']}: {parts}{where}")
        lines += [f"  {m}" for m in report["messages"][:5]]
    if report["unlisted_files"]:
        lines.append(f"{len(report['unlisted_files'])} parquet file(s) are in no metadata csv and were not read")
    return "\n".join(lines)
