"""Training-loader throughput: augmented samples per second for one worker and for N worker processes.

A realistic store (:mod:`benchmarks._store`: gamma lengths, mean ≈ 160 frames) is served by
:class:`aslfs.training.loader.SequenceBatches` exactly as in training (store read → flip → CutMix → the round's
augmentation list → resize/pad → targets with decoder-input masking → batch collate, bucketing on):

- ``per_worker``: ``batch(i)`` called in this process (the work one worker does), in samples/s;
- ``workers=N shared memory|processes|threads``: the batches drawn through Keras' PyDataset adapter (what
  ``model.fit`` uses), i.e. what the training step receives per second: the loader's own pool of spawned processes
  handing batches over in shared memory (``worker_transport: shared_memory``), Keras' pool of processes, which
  sends every batch back through a pipe (a padded batch of 64 × 384 frames is 38 MB, which costs far more than
  making it), or Keras' threads, which share memory but hold the GIL for part of the numpy work.

Usage: ``python -m benchmarks.loader [--round 2] [--batches 12] [--workers 1 2] [--out benchmarks/results/loader.json]``;
the demo shapes: ``--batch-size 8 --max-len 64 --buckets 64``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from aslfs import env
from benchmarks._report import write_report

env.setup()


def serve(ds, batches: int, workers: int) -> tuple[float, int]:
    """Steady-state samples/s drawn through Keras' PyDataset adapter (workers as configured on ``ds``), over as many
    epochs as it takes to time ``batches`` batches. Keras starts its worker pool at every epoch; the first
    ``workers + 1`` batches of an epoch (the pool's start and the queue filling) are drawn but not timed: an epoch
    of the real recipe is about 1,900 batches, where the start-up is negligible."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(ds, shuffle=False)
    samples, elapsed, timed, epoch = 0, 0.0, 0, 0
    skip = workers + 1
    if len(ds) <= skip:
        raise SystemExit(f"loader: an epoch of {len(ds)} batches is too short to time {workers} workers "
                         "(raise --sequences)")
    while timed < batches:
        ds.set_epoch(epoch)
        adapter.on_epoch_begin()
        start = None
        for i, (x, _) in enumerate(adapter.get_numpy_iterator()):
            if i == skip - 1:
                start = time.perf_counter()
            elif i >= skip:
                samples += len(x["padding_mask"])
                timed += 1
                if timed >= batches:
                    break
        elapsed += time.perf_counter() - start
        adapter.on_epoch_end()
        epoch += 1
    return samples / elapsed, samples


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--round", type=int, default=2, choices=(1, 2))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sequences", type=int, default=600)
    ap.add_argument("--max-len", type=int, help="frames after resizing (default: sampling.max_len, 384)")
    ap.add_argument("--buckets", type=int, nargs="+", help="bucket lengths (default: train.buckets)")
    ap.add_argument("--kinds", nargs="+", default=["shared memory", "processes", "threads"],
                    help="worker kinds to time (default: all three)")
    ap.add_argument("--out", default="benchmarks/results/loader.json")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()

    from aslfs.config import AugmentParams, SamplingParams, TrainParams
    from aslfs.data.augment import build_augmentation
    from aslfs.data.store import SequenceStore
    from aslfs.training.loader import SequenceBatches
    from benchmarks._store import write_store

    tp, sampling, aug_params = TrainParams(), SamplingParams(), AugmentParams()
    max_len, buckets = args.max_len or sampling.max_len, args.buckets or tp.buckets
    with tempfile.TemporaryDirectory() as tmp:
        store_dir, table = write_store(tmp, n=args.sequences)
        store = SequenceStore(store_dir)
        if args.round == 1:
            table = table[~table.is_sup].reset_index(drop=True)

        def make(workers: int, processes: bool = True, transport: str = "keras"):
            return SequenceBatches(store, table, args.batch_size, training=True, round=args.round,
                                   augmentation=build_augmentation(aug_params, args.round), seed=0,
                                   buckets=buckets, max_len=max_len, resize_mode=sampling.resize_mode,
                                   decoder_mask_p=aug_params.decoder_mask_p, workers=workers,
                                   use_multiprocessing=processes and workers > 0, worker_transport=transport)

        ds = make(0)
        ds.batch(0)  # warm the page cache
        start, samples = time.perf_counter(), 0
        for i in range(1, args.batches + 1):
            samples += len(ds.batch(i % len(ds))[0]["padding_mask"])
        per_worker = samples / (time.perf_counter() - start)
        results = {"per_worker": {"samples_per_s": round(per_worker, 1), "samples": samples}}
        print(f"{'per worker (in process)':28s} {per_worker:8.1f} samples/s")
        for w in args.workers:
            for kind, processes, transport in (("shared memory", True, "shared_memory"),
                                               ("processes", True, "keras"), ("threads", False, "keras")):
                if kind not in args.kinds:
                    continue
                ds = make(w, processes, transport)
                try:
                    rate, n = serve(ds, args.batches, w)
                finally:
                    ds.close()
                row = {"samples_per_s": round(rate, 1), "samples": n}
                extra = ""
                if ds._prefetcher is not None and ds._prefetcher.stats["batches"]:
                    # the training process's own cost per batch (lending it out of shared memory)
                    stats = ds._prefetcher.stats
                    row["main_ms_per_batch"] = round(1e3 * stats["lend_s"] / stats["batches"], 2)
                    extra = f"   (training process: {row['main_ms_per_batch']:.2f} ms a batch)"
                results[f"workers={w} {kind}"] = row
                print(f"{'workers=' + str(w) + ' ' + kind:28s} {rate:8.1f} samples/s{extra}")
        mean_frames = float(table["seq_len"].mean())
    report = {
        "benchmark": "loader", "round": args.round, "batch_size": args.batch_size, "mean_frames": round(mean_frames, 1),
        "buckets": buckets, "max_len": max_len, "results": results,
    }
    out = write_report(report, args.out, load_before)
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
