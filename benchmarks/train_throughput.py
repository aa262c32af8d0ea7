"""Training throughput (samples/s) of a model preset with length bucketing on and off.

Batches come from :class:`aslfs.training.loader.SequenceBatches` over a realistic store (:mod:`benchmarks._store`:
gamma lengths, mean ≈ 160 frames, the round's augmentation, so lengths after augmentation vary as in training);
they are built once up front, so the figure is the model's training step alone (forward, backward, AdamW with
gradient accumulation), not the loader. Every batch is run once untimed (compilation: one graph per bucket on
XLA/JAX; one relaxed-shape graph on TensorFlow), then the same batches are timed, the two settings alternating (best of ``--passes`` passes each; the machine
is shared and the first model timed in a process runs slower). ``mean_padded_frames``
(frames computed per sample) is the deterministic part of the comparison.

Bucketing off pads every batch to max_len (384); on, each batch is padded to the smallest bucket ≥ its longest
sample (96/160/256/384) — the same loss and gradients thanks to masking (``tests/training/test_bucketing.py``).

Usage: ``python -m benchmarks.train_throughput [--preset demo] [--round 2] [--batch-size 32] [--batches 8]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from aslfs import env
from benchmarks._report import write_report

env.setup()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--round", type=int, default=2, choices=(1, 2))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--sequences", type=int, default=400)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()

    import keras

    from aslfs.config import AugmentParams, SamplingParams, TrainParams
    from aslfs.data.augment import build_augmentation
    from aslfs.data.store import SequenceStore
    from aslfs.models.config import get_config
    from aslfs.models.fingerspeller import FingerSpeller
    from aslfs.training.loader import SequenceBatches
    from aslfs.training.losses import LossConfig
    from aslfs.training.model import TrainingModel
    from aslfs.training.schedule import WarmupCosine
    from benchmarks._store import write_store

    tp, sampling = TrainParams(), SamplingParams()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        store_dir, table = write_store(tmp, n=args.sequences)
        store = SequenceStore(store_dir)
        if args.round == 1:
            table = table[~table.is_sup].reset_index(drop=True)
        # the preset's structure at the reference's 384 frames (the demo presets train at 64; bucketing is moot there)
        cfg = get_config(args.preset, max_len=sampling.max_len)
        setups = {}
        for name, buckets in (("bucketing_off", None), ("bucketing_on", tp.buckets)):
            ds = SequenceBatches(store, table, args.batch_size, training=True, round=args.round,
                                 augmentation=build_augmentation(AugmentParams(), args.round), seed=0,
                                 buckets=buckets, max_len=sampling.max_len, workers=0)
            batch_list = [ds.batch(i) for i in range(min(args.batches, len(ds)))]
            keras.utils.set_random_seed(0)
            model = TrainingModel(FingerSpeller(cfg), LossConfig())
            model.compile(optimizer=keras.optimizers.AdamW(WarmupCosine(1e-3, 10, 1000), weight_decay=0.05,
                                                           global_clipnorm=4.0,
                                                           gradient_accumulation_steps=args.grad_accum or None))
            start = time.perf_counter()
            for x, y in batch_list:  # compile / warm up
                model.train_on_batch(x, y)
            setups[name] = (model, batch_list, time.perf_counter() - start)
        best = {name: float("inf") for name in setups}
        for _ in range(args.passes):  # alternate the two (order effects), keep the best pass of each
            for name, (model, batch_list, _) in setups.items():
                start = time.perf_counter()
                for x, y in batch_list:
                    model.train_on_batch(x, y)
                best[name] = min(best[name], time.perf_counter() - start)
        for name, (model, batch_list, warm) in setups.items():
            elapsed = best[name]
            samples = sum(len(x["padding_mask"]) for x, _ in batch_list)
            frames = [x["padding_mask"].shape[1] for x, _ in batch_list]
            valid = sum(int(x["padding_mask"].sum()) for x, _ in batch_list)
            results[name] = {"samples_per_s": round(samples / elapsed, 2), "samples": samples,
                             "mean_padded_frames": round(float(np.mean(frames)), 1),
                             "seconds": round(elapsed, 2), "warmup_seconds": round(warm, 1),
                             "padded_lengths": frames,
                             "valid_frame_fraction": round(valid / sum(f * len(x["padding_mask"])
                                                                      for f, (x, _) in zip(frames, batch_list)), 3)}
            print(f"{name:14s} {samples / elapsed:8.2f} samples/s  (padded lengths {frames}, "
                  f"valid frames {results[name]['valid_frame_fraction']:.0%}, warm-up {warm:.0f} s)")
        mean_frames = float(table["seq_len"].mean())
    speedup = results["bucketing_on"]["samples_per_s"] / results["bucketing_off"]["samples_per_s"]
    print(f"speed-up {speedup:.2f}x")
    report = {
        "benchmark": "train_throughput", "preset": args.preset, "round": args.round, "batch_size": args.batch_size,
        "grad_accum": args.grad_accum, "mean_frames": round(mean_frames, 1), "buckets": tp.buckets,
        "max_len": sampling.max_len, "backend": keras.backend.backend(), "results": results,
        "speedup": round(speedup, 2),
    }
    out = write_report(report, args.out, load_before)
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
