"""CPU step time of data-parallel training: training steps (forward, backward, AdamW) of the demo preset at the demo
shapes (global batch 8, 64 frames, 48 of them real) on 1 device and on 2 virtual CPU devices
(:mod:`aslfs.training.distribution`).

Virtual CPU devices share the same cores, so on a CPU this measures the overhead of the data-parallel machinery
(sharding, all-reduces), not a speed-up; the figure that matters for scaling comes from GPUs. The device count is
fixed when the backend initialises, so this sets it (``XLA_FLAGS`` for JAX, two logical CPU devices for TensorFlow)
before importing Keras. The steps run through ``fit``, as in training (TensorFlow's ``train_on_batch`` would give
each replica the whole batch); a step's time is the time between two consecutive batch ends, the first ``--warmup``
steps (tracing / compilation) are not timed, and the median of ``--repeats`` steps is reported.

Usage: ``[KERAS_BACKEND=jax] python -m benchmarks.data_parallel [--batch 8] [--frames 64] [--repeats 5]
[--out benchmarks/results/data_parallel_<backend>.json]``
"""

from __future__ import annotations

import os
import statistics

from benchmarks._steps import synthetic_batches, timed_fit
from benchmarks.train_step import step_parser

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"


def main(argv=None) -> dict:
    ap = step_parser(__doc__.splitlines()[0], "demo", 8, 64, 5)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    import keras

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

    x, y = synthetic_batches(args.batch * (args.warmup + args.repeats + 1), args.frames)
    results = {}
    for devices in (1, 2):
        plan = distribution.resolve("data_parallel", devices, args.batch)
        with distribution.scope(plan):
            keras.utils.set_random_seed(0)
            net = FingerSpeller(get_config(args.preset, max_len=args.frames))
            model = TrainingModel(net, LossConfig(ctc_weight=0.5, ctc_blank_id=net.ctc_blank_id))
            opt = distribution.prepare_optimizer(keras.optimizers.AdamW(1e-3, global_clipnorm=4.0), plan)
            model.compile(optimizer=opt)
            times = timed_fit(model, x, y, args.batch, args.warmup)
        results[f"devices={devices}"] = {"step_median_s": round(statistics.median(times), 4),
                                         "samples_per_s": round(args.batch / statistics.median(times), 1)}
        print(f"devices={devices}: {results[f'devices={devices}']}", flush=True)
    report = {"benchmark": "data_parallel", "backend": keras.backend.backend(), "preset": args.preset,
              "batch": args.batch, "frames": args.frames, "repeats": args.repeats, "results": results}
    out = write_report(report, args.out or f"benchmarks/results/data_parallel_{keras.backend.backend()}.json",
                       load_before)
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
