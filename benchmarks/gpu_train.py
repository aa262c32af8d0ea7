"""GPU training throughput of the kaggle-1st recipe on JAX: step time, samples/s, model FLOPs utilisation (MFU) from
an analytic FLOP count, and the projected GPU-hours of the whole recipe.

Measured on one H200 (BENCHMARKS.md "GPU"); run it where GPUs are::

    KERAS_BACKEND=jax python -m benchmarks.gpu_train --preset kaggle-1st-round2 --devices N
    KERAS_BACKEND=jax python -m benchmarks.gpu_train --preset kaggle-1st-round1 --devices N

The step is a round-2 training step (forward and backward CE, confidence BCE, CTC; AdamW with global clipping)
through ``fit`` on a synthetic batch of ``--batch`` sequences (the *global* batch, split over ``--devices`` by
:mod:`aslfs.training.distribution`, data parallel when more than one) padded to ``--frames`` frames (three quarters
real), under the ``--dtype`` policy (default ``mixed_bfloat16``; ``float32`` for the CPU smoke mode). The first
``--warmup`` steps (compilation) are not timed; the median of ``--steps`` is reported.

**FLOPs** (:func:`train_flops_per_sample`, multiply-adds counted as 2): every dense/convolution weight of the encoder
once per frame (the stem convolutions once per frame and landmark column), self-attention scores and mixing
(``4 T² d`` per layer), both decoders' weights once per target position (33) plus their self- and cross-attention;
training = 3 × forward (backward ≈ 2 × forward); embeddings and normalisation are left out. Padded frames count
(they are computed). **MFU** = FLOPs per second / (``--peak-tflops`` × devices); the default peak is the dense
bf16 figure of an H100/H200 SXM (989 TFLOP/s).

**Projection** (:func:`recipe_gpu_hours`): the recipe's samples (round 1: 4 folds × 300 epochs on 3/4 of
``--sequences`` each; round 2: 2 seeds × 400 epochs on all of them; kaggle-1st: ~120k sequences) divided by the
measured samples/s, times the devices. Round 1's model is smaller than round 2's (2.7M against 10.2M parameters;
6.1 against 23.4 training GFLOP per sample at 384 frames by this count): give its measured rate with
``--round1-samples-per-s`` (else round 1 is projected at the round-2 rate). Every step is padded to 384 frames here,
while bucketing shortens the average real step, so the projection is an upper bound.
"""

from __future__ import annotations

import os
import statistics

from benchmarks._steps import synthetic_batches, timed_fit
from benchmarks.train_step import step_parser

#: (folds or seeds, epochs, fraction of the sequences trained on) of the kaggle-1st recipe's two rounds
RECIPE = {"round1": (4, 300, 0.75), "round2": (2, 400, 1.0)}
TARGET_LEN = 33


def train_flops_per_sample(net, frames: int) -> float:
    """Analytic training FLOPs of one sample of ``frames`` frames (module docstring)."""
    cfg = net.model_config

    def params(layer, skip=("embedding", "norm", "gamma", "beta", "moving", "bias")):
        total = stem = 0
        for w in layer.weights:
            if any(s in w.path for s in skip):
                continue
            n = 1
            for d in w.shape:
                n *= int(d)
            if "stem_conv" in w.path:
                stem += n
            else:
                total += n
        return total, stem

    enc, stem = params(net.encoder)
    width = (130 - 1) // 2 + 1  # stem output columns of the all-landmark extractor (an upper bound for the parts)
    forward = 2 * frames * (enc + stem * width) + cfg.num_layers * 4 * frames * frames * cfg.hidden_dim
    for decoder in (net.decoder, net.backward_decoder):
        if decoder is None:
            continue
        dec, _ = params(decoder)
        d = cfg.hidden_dim
        forward += 2 * TARGET_LEN * dec + cfg.decoder_layers * 4 * d * (TARGET_LEN * TARGET_LEN + TARGET_LEN * frames)
    return 3.0 * forward


def flops_rate(net, frames: int, samples_per_s: float) -> float:
    """Training FLOP/s at ``samples_per_s``."""
    return train_flops_per_sample(net, frames) * samples_per_s


def recipe_gpu_hours(samples_per_s: float, devices: int, sequences: int, round1_samples_per_s: float | None = None
                     ) -> dict:
    """GPU-hours of each round of the recipe and in total at ``samples_per_s`` (round 1: ``round1_samples_per_s``
    when given) on ``devices`` devices."""
    rates = {"round1": round1_samples_per_s or samples_per_s, "round2": samples_per_s}
    hours = {name: runs * epochs * frac * sequences / rates[name] / 3600 * devices
             for name, (runs, epochs, frac) in RECIPE.items()}
    return {**{k: round(v, 1) for k, v in hours.items()}, "total": round(sum(hours.values()), 1)}


def main(argv=None) -> dict:
    ap = step_parser(__doc__.splitlines()[0], "kaggle-1st-round2", 64, 384, 20)
    ap.add_argument("--steps", dest="repeats", type=int, help="timed steps (alias of --repeats)")
    ap.add_argument("--devices", type=int, default=0, help="0 = all visible accelerators (or 1 CPU)")
    ap.add_argument("--dtype", default="mixed_bfloat16", help="Keras dtype policy (float32 for a CPU run)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense peak per device for the dtype")
    ap.add_argument("--sequences", type=int, default=120_000)
    ap.add_argument("--round1-samples-per-s", type=float, help="measured round-1 rate for the projection")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    import keras

    from aslfs.models.config import get_config
    from aslfs.models.fingerspeller import FingerSpeller
    from aslfs.training import distribution
    from aslfs.training.losses import LossConfig
    from aslfs.training.model import TrainingModel
    from benchmarks._report import write_report

    load_before = os.getloadavg()
    mode = "data_parallel" if distribution.accelerators() else "off"
    plan = distribution.resolve(mode, args.devices, args.batch)
    devices = plan.replicas
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(args.dtype)
    try:
        with distribution.scope(plan):
            keras.utils.set_random_seed(0)
            net = FingerSpeller(get_config(args.preset, max_len=args.frames))
            model = TrainingModel(net, LossConfig(ctc_weight=0.5, ctc_blank_id=net.ctc_blank_id))
            opt = keras.optimizers.AdamW(1e-3, global_clipnorm=4.0)
            if args.dtype.startswith("mixed_float16"):
                opt = keras.optimizers.LossScaleOptimizer(opt)
            model.compile(optimizer=distribution.prepare_optimizer(opt, plan))
            x, y = synthetic_batches(args.batch * (args.warmup + args.repeats + 1), args.frames)
            if not net.model_config.backward_decoder:  # round 1: no backward decoder input
                x.pop("backward_decoder_input_ids")
            times = timed_fit(model, x, y, args.batch, args.warmup)
    finally:
        keras.config.set_dtype_policy(policy)
    step = statistics.median(times)
    rate = args.batch / step
    mfu = float(f"{flops_rate(net, args.frames, rate) / (args.peak_tflops * 1e12 * devices):.3g}")
    flops = train_flops_per_sample(net, args.frames)
    report = {"benchmark": "gpu_train", "backend": keras.backend.backend(), "preset": args.preset,
              "dtype": args.dtype, "devices": devices, "plan": plan.describe(), "batch": args.batch,
              "frames": args.frames, "step_median_s": round(step, 4), "samples_per_s": round(rate, 2),
              "train_gflops_per_sample": round(flops / 1e9, 3),
              "mfu": mfu, "peak_tflops": args.peak_tflops,
              "recipe_gpu_hours": recipe_gpu_hours(rate, devices, args.sequences, args.round1_samples_per_s)}
    print(report, flush=True)
    out = write_report(report, args.out or f"benchmarks/results/gpu_train_{devices}x.json", load_before)
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
