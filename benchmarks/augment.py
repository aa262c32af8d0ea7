"""Augmented training samples per second for one worker (single process), round-2 (or round-1) pipeline.

Sequences have realistic lengths (gamma-distributed, mean ≈ 160 frames, clipped to [1, 1000]) and look normalised
(standard-normal coordinates, one hand missing in every other frame). Three figures:

- ``train_sample``: :func:`aslfs.data.sample.make_train_sample` on already-normalised arrays (flip, CutMix with a
  same-participant partner, the round's Compose list, resize/pad to 384, targets with decoder-input masking);
- ``train_sample_with_normalize``: the same plus :func:`normalize_np` of the raw (T, 390) anchor and partner, as a
  loader that reads raw frames pays;
- ``eval_sample``: :func:`make_eval_sample` (resize/pad + targets).

Usage: ``python -m benchmarks.augment [--seconds 3] [--round 2] [--out benchmarks/results/augment.json]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from aslfs import landmarks as lm
from aslfs.config import AugmentParams, SamplingParams
from aslfs.data.augment import build_augmentation
from aslfs.data.normalize import normalize_np
from aslfs.data.sample import make_eval_sample, make_train_sample
from benchmarks._report import write_report

PHRASES = ["3 creekhouse", "scales/kuhaylah", "1383 william lanier", "988 franklin lane", "6920 northeast 661st road",
           "www.freem.ne.jp", "https://jsi.is/hukuoka", "239613 stolze", "871 township road 3", "+44-87-86-97"]


def make_pool(n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, str, float]]:
    pool = []
    for i in range(n):
        t = int(np.clip(rng.gamma(3.0, 160 / 3.0), 1, 1000))
        raw = rng.standard_normal((t, 390)).astype(np.float32)
        cols = lm.to_landmarks(raw)  # view (T, 130, 3)
        cols[::2, lm.RIGHT_HAND] = np.nan
        pool.append((raw, normalize_np(raw), PHRASES[i % len(PHRASES)], float(rng.random())))
    return pool


def rate(fn, seconds: float) -> tuple[float, int]:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn(n)
        n += 1
    return n / (time.perf_counter() - start), n


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--round", type=int, default=2, choices=(1, 2))
    ap.add_argument("--pool", type=int, default=200)
    ap.add_argument("--out", default="benchmarks/results/augment.json")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()

    rng = np.random.default_rng(0)
    pool = make_pool(args.pool, rng)
    params, sampling = AugmentParams(), SamplingParams()
    aug = build_augmentation(params, args.round)

    def partner_normalised(r):
        _, x, ph, sc = pool[int(r.integers(len(pool)))]
        return x, ph, sc

    def partner_raw(r):
        raw, _, ph, sc = pool[int(r.integers(len(pool)))]
        return normalize_np(raw), ph, sc

    def train(i):
        _, x, ph, sc = pool[i % len(pool)]
        make_train_sample(x, ph, sc, None, rng, aug, partner_normalised, sampling.max_len, sampling.resize_mode,
                          params.decoder_mask_p)

    def train_norm(i):
        raw, _, ph, sc = pool[i % len(pool)]
        make_train_sample(normalize_np(raw), ph, sc, len(raw), rng, aug, partner_raw, sampling.max_len,
                          sampling.resize_mode, params.decoder_mask_p)

    def evaluate(i):
        _, x, ph, sc = pool[i % len(pool)]
        make_eval_sample(x, ph, sc, None, sampling.max_len, sampling.resize_mode)

    results = {}
    for name, fn in (("train_sample", train), ("train_sample_with_normalize", train_norm), ("eval_sample", evaluate)):
        per_s, n = rate(fn, args.seconds)
        results[name] = {"samples_per_s": round(per_s, 1), "samples": n}
        print(f"{name:30s} {per_s:8.1f} samples/s  ({n} samples)")

    report = {
        "benchmark": "augment",
        "round": args.round,
        "mean_frames": round(float(np.mean([len(p[0]) for p in pool])), 1),
        "max_len": sampling.max_len,
        "resize_mode": sampling.resize_mode,
        "seconds_per_figure": args.seconds,
        "results": results,
        "numpy": np.__version__,
    }
    out = write_report(report, args.out, load_before)
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
