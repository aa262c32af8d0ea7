"""Preprocessing throughput: the ``select`` stage against a naive pandas baseline, on the same parquet files.

Each method runs in its own subprocess; its peak RSS comes from ``os.wait4`` (the child's own ``ru_maxrss``), its
time is measured inside the child around the work only (interpreter start-up and imports excluded, for both), as
wall seconds and as CPU seconds (all threads; on a shared machine the CPU figure is the steadier one). With
``--repeat N`` the methods alternate N times and the fastest run of each is kept.

- ``baseline``: for each parquet file the metadata lists, ``pandas.read_parquet`` of the whole file (all 1,631
  columns), ``groupby('sequence_id')``, and the 390 selected columns of each group as a float32 array. Nothing is
  written, so the baseline is favoured.
- ``select``: :func:`aslfs.data.select.select` (streams only the 391 needed columns batch by batch, validates,
  writes the shards, the index and the report), with ``workers`` processes (default 1).
- ``select_subset`` (``--scaling``): ``select`` on the first quarter of the files; its peak RSS equal to the full
  run's shows that memory does not grow with the corpus.
- ``decode_floor`` (``--floor``): only the parquet decoding any ``select`` must do (the ``sequence_id`` and 390
  selected columns of every file, record batch by record batch, as ``select`` reads them; nothing converted,
  checked or written). Its speed-up over the baseline bounds what ``select`` can reach on the same machine.

The parquet files are read once before timing so that every method finds them in the page cache.

Usage::

    aslfs synth /tmp/corpus --sequences 5000 --seed 0            # or: --generate random 5000 (see below)
    python -m benchmarks.preprocess /tmp/corpus [--workers 1 2] [--scaling] [--floor] [--repeat 3] [--out FILE.json]

``--generate random N`` first writes N sequences of random float32 frames (160 ± 60 frames, 250 per file, hands
missing in 30 % of frames: incompressible, about the real 1.5 MB per sequence) to DATA_DIR with the fixture writer;
``--generate synth N`` runs ``aslfs synth``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._report import write_report

RESULTS = Path("benchmarks/results/preprocess.json")


# ------------------------------------------------------------------------------------------------------- the children

def _baseline(data_dir: Path) -> dict:
    import numpy as np
    import pandas as pd

    from aslfs.data.metadata import read_metadata
    from aslfs.landmarks import SELECTED_COLUMNS

    cols = list(SELECTED_COLUMNS)
    meta = read_metadata(data_dir)
    start = time.perf_counter()
    sequences = frames = 0
    for rel in meta.path.unique():
        df = pd.read_parquet(data_dir / rel).reset_index()
        for _, group in df.groupby("sequence_id", sort=False):
            arr = group[cols].to_numpy(np.float32)
            sequences += 1
            frames += len(arr)
        del df
    return {"seconds": time.perf_counter() - start, "sequences": sequences, "frames": frames}


def _select(data_dir: Path, out_dir: Path, workers: int) -> dict:
    from aslfs.config import SelectParams
    from aslfs.data.select import select

    start = time.perf_counter()
    report = select(data_dir, out_dir, SelectParams(on_invalid="skip", workers=workers))
    return {"seconds": time.perf_counter() - start, "sequences": report["sequences"], "frames": report["frames"],
            "skipped": report["skipped_total"]}


def _decode_floor(data_dir: Path) -> dict:
    import pyarrow.parquet as pq

    from aslfs.data.metadata import read_metadata
    from aslfs.data.reader import BATCH_ROWS, ID_COLUMN
    from aslfs.landmarks import SELECTED_COLUMNS

    meta = read_metadata(data_dir)
    start = time.perf_counter()
    frames = 0
    for rel in meta.path.unique():
        for batch in pq.ParquetFile(data_dir / rel).iter_batches(
                batch_size=BATCH_ROWS, columns=[ID_COLUMN, *SELECTED_COLUMNS], use_threads=True):
            frames += batch.num_rows
    return {"seconds": time.perf_counter() - start, "sequences": int(meta.sequence_id.nunique()), "frames": frames}


def _cpu_seconds() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def child(argv: list[str]) -> None:
    method, data_dir, out_dir, workers = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3])
    from aslfs import env

    env.setup()
    import numpy, pandas, pyarrow.parquet  # noqa: F401,E401  imports are not part of the measured work

    cpu = _cpu_seconds()
    if method == "baseline":
        result = _baseline(data_dir)
    elif method == "decode_floor":
        result = _decode_floor(data_dir)
    else:
        result = _select(data_dir, out_dir, workers)
    result["cpu_seconds"] = _cpu_seconds() - cpu  # all threads, and worker processes once they exited
    if workers > 1:
        import resource

        result["workers_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def run_child(method: str, data_dir: Path, out_dir: Path, workers: int = 1) -> dict:
    """Run one method in a fresh interpreter; its peak RSS (workers report theirs separately)."""
    cmd = [sys.executable, "-m", "benchmarks.preprocess", "--child", method, str(data_dir), str(out_dir), str(workers)]
    wall = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - wall
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed with exit status {proc.returncode}")
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    res["wall_seconds"] = wall
    res["peak_rss_mb"] = usage.ru_maxrss / 1024  # the child process itself (kB on Linux)
    return res


# ------------------------------------------------------------------------------------------------------ corpus helpers

def parquet_files(data_dir: Path) -> list[Path]:
    from aslfs.data.metadata import read_metadata

    meta = read_metadata(data_dir)
    return [data_dir / rel for rel in meta.path.unique()]


def warm_cache(files: list[Path]) -> None:
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def subset_dir(data_dir: Path, fraction: float, dst: Path) -> Path:
    """A competition directory with the first ``fraction`` of the files (symlinked) and their csv rows."""
    import pandas as pd

    from aslfs.data.kaggle_format import SPLITS

    frames = {}
    for name in SPLITS:
        if (data_dir / name).is_file():
            frames[name] = pd.read_csv(data_dir / name)
    paths = list(dict.fromkeys(p for df in frames.values() for p in df.path))
    keep = set(paths[: max(1, int(round(len(paths) * fraction)))])
    for name, df in frames.items():
        part = df[df.path.isin(keep)]
        if len(part):
            part.to_csv(dst / name, index=False)
    for rel in keep:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).symlink_to((data_dir / rel).resolve())
    return dst


def generate(kind: str, n: int, data_dir: Path, seed: int = 0) -> None:
    if kind == "synth":
        subprocess.run([sys.executable, "-m", "stages.cli", "synth", str(data_dir), "--sequences", str(n),
                        "--seed", str(seed)], check=True)
        return
    import numpy as np
    import pandas as pd

    from aslfs.data.kaggle_format import SUPPLEMENTAL_CSV, SUPPLEMENTAL_DIR, TRAIN_CSV, TRAIN_DIR, \
        write_landmark_file, write_metadata_csv
    from aslfs.landmarks import ALL_COLUMNS

    hands = [np.array([j for j, c in enumerate(ALL_COLUMNS) if f"_{h}_hand_" in c]) for h in ("left", "right")]
    rng = np.random.default_rng(seed)
    per_file, rows = 250, []
    n_supp = n * 3 // 10
    for start in range(0, n, per_file):
        ids = range(start, min(n, start + per_file))
        supp = start >= n - n_supp
        folder, file_id = (SUPPLEMENTAL_DIR if supp else TRAIN_DIR), 100_000 + start // per_file
        items = []
        for i in ids:
            t = int(np.clip(rng.normal(160, 60), 10, 600))
            f = rng.random((t, len(ALL_COLUMNS)), dtype=np.float32)
            for cols in hands:
                f[np.ix_(rng.random(t) < 0.3, cols)] = np.nan
            items.append((i, f))
            rows.append({"path": f"{folder}/{file_id}.parquet", "file_id": file_id, "sequence_id": i,
                         "participant_id": int(rng.integers(40)), "phrase": "hello world", "supp": supp})
        write_landmark_file(data_dir / folder / f"{file_id}.parquet", items)
    meta = pd.DataFrame(rows)
    write_metadata_csv(data_dir / TRAIN_CSV, meta[~meta.supp])
    if meta.supp.any():
        write_metadata_csv(data_dir / SUPPLEMENTAL_CSV, meta[meta.supp])


# ----------------------------------------------------------------------------------------------------------- the main

def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(argv[1:])
        return {}
    ap = argparse.ArgumentParser(prog="python -m benchmarks.preprocess", description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", type=Path, help="competition-format directory")
    ap.add_argument("--workers", type=int, nargs="+", default=[1], help="select runs with these worker counts")
    ap.add_argument("--scaling", action="store_true", help="also run select on a quarter of the files (peak RSS)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--floor", action="store_true", help="also time the parquet decoding alone (select's floor)")
    ap.add_argument("--repeat", type=int, default=1, help="run each method N times, alternating; keep the fastest")
    ap.add_argument("--generate", nargs=2, metavar=("KIND", "N"), help="first write a corpus (synth|random, N sequences)")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default: {RESULTS})")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()

    data_dir = args.data_dir
    if args.generate:
        if data_dir.exists():
            raise SystemExit(f"{data_dir}: exists; --generate writes a new directory")
        t = time.perf_counter()
        generate(args.generate[0], int(args.generate[1]), data_dir)
        print(f"generated {args.generate[1]} sequences ({args.generate[0]}) in {time.perf_counter() - t:.0f} s")
    files = parquet_files(data_dir)
    total_bytes = sum(f.stat().st_size for f in files)
    warm_cache(files)

    results: dict[str, dict] = {}

    def keep(name: str, r: dict) -> None:
        old = results.get(name)
        r["runs_seconds"] = (old["runs_seconds"] if old else []) + [round(r["seconds"], 3)]
        results[name] = r if old is None or r["seconds"] < old["seconds"] else {**old, "runs_seconds": r["runs_seconds"]}

    with tempfile.TemporaryDirectory(prefix="aslfs-bench-") as tmp:
        tmp = Path(tmp)
        sub = subset_dir(data_dir, 0.25, Path(tempfile.mkdtemp(dir=tmp))) if args.scaling else None
        for _ in range(args.repeat):
            if not args.no_baseline:
                keep("baseline", run_child("baseline", data_dir, tmp / "unused"))
            for w in args.workers:
                keep(f"select_w{w}", run_child("select", data_dir, tmp / f"sel{w}", w))
                shutil.rmtree(tmp / f"sel{w}", ignore_errors=True)
            if args.floor:
                keep("decode_floor", run_child("decode_floor", data_dir, tmp / "unused"))
            if sub is not None:
                r = run_child("select", sub, tmp / "sub_out", 1)
                r["parquet_bytes"] = sum(f.stat().st_size for f in parquet_files(sub))
                keep("select_w1_quarter", r)
                shutil.rmtree(tmp / "sub_out", ignore_errors=True)
    for name, r in results.items():
        nbytes = r.get("parquet_bytes", total_bytes)
        r["parquet_bytes"] = nbytes
        r["sequences_per_s"] = r["sequences"] / r["seconds"]
        r["parquet_mb_per_s"] = nbytes / 1e6 / r["seconds"]
    base = results.get("baseline")
    if base:
        for name, r in results.items():
            full = name != "select_w1_quarter"
            r["speedup_vs_baseline"] = base["seconds"] / r["seconds"] if full else None
            r["cpu_speedup_vs_baseline"] = base["cpu_seconds"] / r["cpu_seconds"] if full else None

    print(f"\ncorpus: {data_dir} — {len(files)} parquet files, {total_bytes / 1e6:.0f} MB, "
          f"{results[next(iter(results))]['sequences']} sequences")
    header = (f"{'method':<20}{'sequences':>10}{'seconds':>9}{'seq/s':>9}{'MB/s':>8}{'peak RSS MB':>13}"
              f"{'speedup':>9}{'CPU s':>8}{'CPU speedup':>13}")
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        sp, csp = r.get("speedup_vs_baseline"), r.get("cpu_speedup_vs_baseline")
        print(f"{name:<20}{r['sequences']:>10}{r['seconds']:>9.2f}{r['sequences_per_s']:>9.0f}"
              f"{r['parquet_mb_per_s']:>8.0f}{r['peak_rss_mb']:>13.0f}{(f'{sp:.1f}x' if sp else ''):>9}"
              f"{r['cpu_seconds']:>8.1f}{(f'{csp:.1f}x' if csp else ''):>13}")
    out = {"data_dir": str(data_dir), "files": len(files), "parquet_bytes": total_bytes, "results": results}
    write_report(out, args.out, load_before)
    print(f"\nwritten {args.out}")
    return out


if __name__ == "__main__":
    main()
