"""Latency of an exported ``model.tflite`` (LiteRT, ``ai_edge_litert``) per sequence length, as the harness runs it.

For each T in ``--lengths`` (default 20, 80, 150, 300, 450; 450 is resized to 384 inside the graph) the
``serving_default`` signature is called on random frames with a missing hand: ``--warmup`` calls, then ``--repeats``
timed calls. Two modes:

- ``fixed``: the same T call after call (the reference's measurement; no tensor re-allocation between calls);
- ``mixed``: T changes at every call (the Kaggle harness: every sequence has its own length, so the interpreter
  resizes the input and re-plans memory on each call).

Reported per T: median and minimum wall time (ms) and the median CPU time of the process (ms; all threads). On a
shared machine wall time varies with the load; CPU time much less, and the load average is recorded.

Export the model with ``--force-steps 33`` to time 33 decoder steps (the reference's figures, measured with random
weights: 102, 166, 255, 449, 568 ms at T = 20, 80, 150, 300, 450 with 2 threads); without it, decoding stops at the
end token.

Usage: ``python -m benchmarks.tflite_latency MODEL.tflite [--threads 2] [--out benchmarks/results/x.json]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from benchmarks._report import write_report

REFERENCE_MS = {20: 102, 80: 166, 150: 255, 300: 449, 450: 568}


def make_frames(t: int, rng: np.random.Generator) -> np.ndarray:
    frames = rng.random((t, 390), dtype=np.float32)
    frames[:, 40:61] = np.nan  # left hand missing (x); y, z likewise
    frames[:, 170:191] = np.nan
    frames[:, 300:321] = np.nan
    return frames


def measure(runner, frames: np.ndarray) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = runner(inputs=frames)["outputs"]
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3, int(out.shape[0])


def run(model: str, threads: int = 2, lengths=(20, 80, 150, 300, 450), warmup: int = 2, repeats: int = 10,
        modes=("fixed", "mixed"), seed: int = 0) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model), num_threads=threads)
    runner = interpreter.get_signature_runner("serving_default")
    rng = np.random.default_rng(seed)
    frames = {t: make_frames(t, rng) for t in lengths}
    results: dict = {}
    if "fixed" in modes:
        table = {}
        for t in lengths:
            for _ in range(warmup):
                measure(runner, frames[t])
            samples = [measure(runner, frames[t]) for _ in range(repeats)]
            table[t] = _stats(samples)
        results["fixed"] = table
    if "mixed" in modes:
        samples: dict = {t: [] for t in lengths}
        for _ in range(warmup):
            for t in lengths:
                measure(runner, frames[t])
        for _ in range(repeats):
            for t in lengths:
                samples[t].append(measure(runner, frames[t]))
        results["mixed"] = {t: _stats(s) for t, s in samples.items()}
    return results


def _stats(samples) -> dict:
    wall = [s[0] for s in samples]
    cpu = [s[1] for s in samples]
    return {"wall_ms_median": round(statistics.median(wall), 2), "wall_ms_min": round(min(wall), 2),
            "cpu_ms_median": round(statistics.median(cpu), 2), "rows": samples[-1][2]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model.tflite")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lengths", type=int, nargs="+", default=[20, 80, 150, 300, 450])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--modes", nargs="+", default=["fixed", "mixed"], choices=["fixed", "mixed"])
    ap.add_argument("--label", default=None, help="free text stored with the result (e.g. how the model was exported)")
    ap.add_argument("--out", default=None, help="JSON result file (default: benchmarks/results/tflite_latency.json)")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()
    results = run(args.model, args.threads, args.lengths, args.warmup, args.repeats, args.modes)
    report = {
        "model": str(args.model),
        "bytes": Path(args.model).stat().st_size,
        "label": args.label,
        "threads": args.threads,
        "repeats": args.repeats,
        "results": results,
        "reference_ms_2_threads_33_steps": REFERENCE_MS,
    }
    out = write_report(report, args.out or "benchmarks/results/tflite_latency.json", load_before)
    print(f"{args.model} ({report['bytes'] / 1e6:.2f} MB, {args.threads} threads, load {load_before[0]:.1f})")
    print(f"{'T':>5} " + " ".join(f"{m + ' wall ms (min)':>24} {m + ' cpu ms':>12}" for m in results) + "  ref ms")
    for t in args.lengths:
        cells = " ".join(f"{results[m][t]['wall_ms_median']:>14.1f} ({results[m][t]['wall_ms_min']:>6.1f}) "
                         f"{results[m][t]['cpu_ms_median']:>12.1f}" for m in results)
        print(f"{t:>5} {cells}  {REFERENCE_MS.get(t, '-')}")
    print(f"-> {out}")
    return report


if __name__ == "__main__":
    main()
