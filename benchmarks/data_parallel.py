"""CPU step time of data-parallel training: one training step (forward, backward, AdamW) of the demo preset at the
demo shapes (global batch 8, 64 frames) on 1 device and on 2 virtual CPU devices (:mod:`aslfs.training.distribution`).

Virtual CPU devices share the same cores, so on a CPU this measures the overhead of the data-parallel machinery
(sharding, all-reduces), not a speed-up; the figure that matters for scaling comes from GPUs. The device count is
fixed when the backend initialises, so this sets it (``XLA_FLAGS`` for JAX, two logical CPU devices for TensorFlow)
before importing Keras. The first ``--warmup`` steps (tracing / compilation) are not timed; the median of
``--repeats`` steps is reported.

Usage: ``[KERAS_BACKEND=jax] python -m benchmarks.data_parallel [--batch 8] [--frames 64] [--repeats 5]
[--out benchmarks/results/data_parallel_<backend>.json]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    import keras
    import numpy as np

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # benchmark-only: two logical CPU devices

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from aslfs.models.config import get_config
    from aslfs.models.fingerspeller import FingerSpeller
    from aslfs.training import distribution
    from aslfs.training.losses import LossConfig
    from aslfs.training.model import TrainingModel
    from benchmarks._report import write_report

    rng = np.random.default_rng(0)
    mask = np.ones((args.batch, args.frames), bool)
    mask[:, args.frames * 3 // 4:] = False
    tokens = rng.integers(0, 59, (args.batch, 33)).astype("int32")
    x = {"landmarks": rng.normal(size=(args.batch, args.frames, 130, 3)).astype("float32"), "padding_mask": mask,
         "decoder_input_ids": tokens, "backward_decoder_input_ids": tokens}
    y = {"token_ids": tokens, "backward_token_ids": tokens, "score": rng.random(args.batch).astype("float32")}
    results = {}
    for devices in (1, 2):
        plan = distribution.resolve("data_parallel", devices, args.batch)
        with distribution.scope(plan):
            keras.utils.set_random_seed(0)
            net = FingerSpeller(get_config(args.preset, max_len=args.frames))
            model = TrainingModel(net, LossConfig(ctc_weight=0.5, ctc_blank_id=net.ctc_blank_id))
            opt = distribution.prepare_optimizer(keras.optimizers.AdamW(1e-3, global_clipnorm=4.0), plan)
            model.compile(optimizer=opt)
            for _ in range(args.warmup):
                model.train_on_batch(x, y)
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                float(np.asarray(model.train_on_batch(x, y)))
                times.append(time.perf_counter() - t0)
        results[f"devices={devices}"] = {"step_median_s": round(statistics.median(times), 4),
                                         "samples_per_s": round(args.batch / statistics.median(times), 1)}
        print(f"devices={devices}: {results[f'devices={devices}']}", flush=True)
    report = {"benchmark": "data_parallel", "backend": keras.backend.backend(), "preset": args.preset,
              "batch": args.batch, "frames": args.frames, "results": results}
    out = write_report(report, args.out or f"benchmarks/results/data_parallel_{keras.backend.backend()}.json",
                       load_before)
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
