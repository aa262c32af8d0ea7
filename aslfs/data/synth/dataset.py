"""Write a whole synthetic dataset in the competition's format (see :func:`generate`)."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aslfs.atomic import atomic_dir
from aslfs.data import kaggle_format as kf
from aslfs.data.synth.phrases import supplemental_phrases, train_phrases
from aslfs.data.synth.sequence import LHAND0, RHAND0, synthesize
from aslfs.data.synth.signer import Signer, make_signer
from aslfs.errors import DataError

ALIGNMENT_FILE = "alignment.parquet"
_ID_LOW, _ID_HIGH = 10**8, 2**31 - 1


@dataclass(frozen=True)
class SequenceJob:
    """One sequence to synthesise: its place in the dataset plan fixes its random stream."""

    index: int
    sequence_id: int
    phrase: str
    signer: int
    fast: bool


@dataclass(frozen=True)
class FileJob:
    """One parquet file: its path relative to the dataset root and its sequences, in file order."""

    relpath: str
    file_id: int
    split: str
    sequences: tuple[SequenceJob, ...]


def _unique_ids(rng: np.random.Generator, n: int, taken: set[int]) -> list[int]:
    out: list[int] = []
    while len(out) < n:
        for v in rng.integers(_ID_LOW, _ID_HIGH, n - len(out) + 8).tolist():
            if v not in taken and len(out) < n:
                taken.add(v)
                out.append(v)
    return out


def plan_dataset(params) -> tuple[list[Signer], list[FileJob], pd.DataFrame]:
    """Decide participants, phrases, ids and files (no landmarks yet); deterministic for ``params.seed``.

    Returns:
        signers, file jobs, and the metadata rows (csv columns plus ``split``) in file order.
    """
    n = params.sequences
    n_supp = int(round(n * params.supplemental_fraction))
    n_train = n - n_supp
    n_part = int(min(params.participants, max(2, n // 3)))
    rng = np.random.default_rng([params.seed, 1])
    pids = rng.choice(np.arange(1, max(300, 10 * n_part)), size=n_part, replace=False).tolist()
    lefties = set(rng.choice(n_part, size=int(round(params.left_handed_fraction * n_part)), replace=False).tolist())
    signers = [make_signer(pid, np.random.default_rng([params.seed, 2, i]), i in lefties) for i, pid in enumerate(pids)]
    mean_dropout = float(np.mean([s.dropout_factor for s in signers]))
    for s in signers:  # personal dropout propensities average to 1, so the dataset rate is hand_dropout
        s.dropout_factor /= mean_dropout

    weights = rng.dirichlet(np.full(n_part, 4.0))
    who = np.concatenate([rng.permutation(n_part)[: min(n, n_part)],
                          rng.choice(n_part, size=max(n - n_part, 0), p=weights)])
    who = rng.permutation(who)
    split = np.array(["train"] * n_train + ["supplemental"] * n_supp)[rng.permutation(n)]
    fast = rng.random(n) < params.fast_fraction

    prng = np.random.default_rng([params.seed, 3])
    phrases = np.empty(n, dtype=object)
    phrases[split == "train"] = train_phrases(prng, int((split == "train").sum()))
    phrases[split == "supplemental"] = supplemental_phrases(prng, int((split == "supplemental").sum()))

    taken: set[int] = set()
    seq_ids = _unique_ids(rng, n, taken)
    files: list[FileJob] = []
    rows = []
    for name, folder in (("train", kf.TRAIN_DIR), ("supplemental", kf.SUPPLEMENTAL_DIR)):
        idx = np.flatnonzero(split == name)
        chunks = [idx[i:i + params.sequences_per_file] for i in range(0, len(idx), params.sequences_per_file)]
        file_ids = _unique_ids(rng, len(chunks), taken)
        for fid, chunk in zip(file_ids, chunks):
            rel = f"{folder}/{fid}.parquet"
            jobs = tuple(SequenceJob(int(i), seq_ids[i], str(phrases[i]), int(who[i]), bool(fast[i])) for i in chunk)
            files.append(FileJob(rel, fid, name, jobs))
            rows += [(rel, fid, j.sequence_id, signers[j.signer].participant_id, j.phrase, name) for j in jobs]
    meta = pd.DataFrame(rows, columns=[*kf.CSV_COLUMNS, "split"])
    return signers, files, meta


def _write_file(root: str, job: FileJob, signers: list[Signer], params) -> dict:
    """Synthesise and write one parquet file; return its alignment rows and counts."""
    seqs, align_ids, align_frames, align_chars = [], [], [], []
    lost = offhand = frames_total = 0
    for sj in job.sequences:
        signer = signers[sj.signer]
        rng = np.random.default_rng([params.seed, 7, sj.index])
        frames, chars = synthesize(sj.phrase, signer, rng, params.hand_dropout, sj.fast, params.speed)
        seqs.append((sj.sequence_id, frames))
        t = len(frames)
        frames_total += t
        dom, other = (LHAND0, RHAND0) if signer.left_handed else (RHAND0, LHAND0)
        lost += int(np.isnan(frames[:, dom]).sum())
        offhand += int((~np.isnan(frames[:, other])).sum())
        align_ids.append(np.full(t, sj.sequence_id, np.int64))
        align_frames.append(np.arange(t, dtype=np.int16))
        align_chars.append(chars)
    path = Path(root) / job.relpath
    kf.write_landmark_file(path, seqs, compression="zstd", byte_stream_split=True)
    return {
        "sequence_id": np.concatenate(align_ids),
        "frame": np.concatenate(align_frames),
        "char": np.concatenate(align_chars).astype(str),
        "frames": frames_total,
        "lost": lost,
        "offhand": offhand,
        "lengths": [len(f) for _, f in seqs],
    }


def generate(out_dir: str | Path, params) -> dict:
    """Write a synthetic dataset in the exact competition format.

    ``out_dir`` gets ``train.csv``, ``supplemental_metadata.csv``, ``train_landmarks/<file_id>.parquet``,
    ``supplemental_landmarks/<file_id>.parquet`` and ``alignment.parquet`` (``sequence_id, frame, char``: the character
    held at each frame, '' during transitions and rest, ' ' during the pause of a space). The dataset is assembled in a
    temporary sibling folder and renamed into place at the end: an existing ``out_dir`` is replaced as a whole, and a
    failure leaves it untouched.

    Args:
        out_dir: destination folder.
        params: an :class:`aslfs.config.SynthParams`.
    Returns:
        A report: counts (sequences, participants, files, frames), frame-length statistics, the dominant hand's missing
        fraction, bytes written and seconds.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: exists and is not a folder")
    with atomic_dir(out_dir) as tmp:
        signers, files, meta = plan_dataset(params)
        args = [(str(tmp), job, signers, params) for job in files]
        workers = min(params.workers, len(files))
        if workers > 1:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                results = list(pool.map(_write_file, *zip(*args)))
        else:
            results = [_write_file(*a) for a in args]
        for split_name, csv_name in (("train", kf.TRAIN_CSV), ("supplemental", kf.SUPPLEMENTAL_CSV)):
            kf.write_metadata_csv(tmp / csv_name, meta[meta["split"] == split_name])
        for folder in (kf.TRAIN_DIR, kf.SUPPLEMENTAL_DIR):
            (tmp / folder).mkdir(exist_ok=True)
        align = pa.table({
            "sequence_id": pa.array(np.concatenate([r["sequence_id"] for r in results]), pa.int64()),
            "frame": pa.array(np.concatenate([r["frame"] for r in results]), pa.int16()),
            "char": pa.array(np.concatenate([r["char"] for r in results]), pa.string()),
        })
        pq.write_table(align, tmp / ALIGNMENT_FILE, compression="zstd")
    lengths = np.concatenate([r["lengths"] for r in results]) if results else np.zeros(0)
    frames = int(lengths.sum())
    n_bytes = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return {
        "out_dir": str(out_dir),
        "sequences": int(len(meta)),
        "train_sequences": int((meta["split"] == "train").sum()),
        "supplemental_sequences": int((meta["split"] == "supplemental").sum()),
        "participants": len(signers),
        "left_handed_participants": int(sum(s.left_handed for s in signers)),
        "files": len(files),
        "frames": frames,
        "frames_mean": float(lengths.mean()) if len(lengths) else 0.0,
        "frames_median": float(np.median(lengths)) if len(lengths) else 0.0,
        "frames_min": int(lengths.min()) if len(lengths) else 0,
        "frames_max": int(lengths.max()) if len(lengths) else 0,
        "dominant_missing_fraction": sum(r["lost"] for r in results) / max(frames, 1),
        "offhand_visible_fraction": sum(r["offhand"] for r in results) / max(frames, 1),
        "bytes": int(n_bytes),
        "seconds": round(time.perf_counter() - start, 2),
    }
