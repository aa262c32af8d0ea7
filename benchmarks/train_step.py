"""CPU time of one training step (forward + backward + AdamW update) and the B = 1 encoder latency.

The step is Keras' ``train_on_batch`` on a ``FingerSpeller`` with the round-2 loss mix (forward CE, backward CE,
confidence BCE; docs/reference.md §4.10), random weights and a random batch of ``--batch`` sequences padded to
``--frames`` frames with ``--valid`` real frames each. The first ``--warmup`` steps (tracing / XLA compilation) are
not timed; the median (and min) wall time of ``--repeats`` timed steps is reported, plus the median process CPU time
(all threads), which other processes on a shared machine disturb less. The encoder latency is ``model.encode`` on one
unpadded sequence of ``--latency-frames`` frames in inference mode (compiled once, median of ``--repeats``).

Usage::

    python -m benchmarks.train_step --preset kaggle-1st-round2 --batch 16 --frames 384 --valid 250 --threads 2
    KERAS_BACKEND=jax python -m benchmarks.train_step ...

Options: ``--jit auto|on|off`` (default auto, Keras' rule: no XLA for TensorFlow on CPU, which is the fast CPU mode
since XLA's CPU depthwise convolution is slow),
``--onednn 0|1`` (TensorFlow's oneDNN kernels, default 1), ``--dtype mixed_bfloat16``, ``--out FILE.jsonl``
(append the figures as one JSON line).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time


def step_parser(description: str, preset: str, batch: int, frames: int, repeats: int) -> argparse.ArgumentParser:
    """The options every training-step benchmark takes: ``--preset --batch --frames --warmup --repeats``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--preset", default=preset)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--frames", type=int, default=frames)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing / compilation)")
    p.add_argument("--repeats", type=int, default=repeats, help="timed steps")
    return p


def _parse(argv=None):
    p = step_parser(__doc__.splitlines()[0], "kaggle-1st-round2", 16, 384, 3)
    p.add_argument("--valid", type=int, default=250)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--latency-frames", type=int, default=150)
    p.add_argument("--jit", choices=("auto", "on", "off"), default="auto",
                   help="XLA: Keras' jit_compile (auto = XLA on JAX and on a TensorFlow GPU, not on a TensorFlow CPU)")
    p.add_argument("--onednn", choices=("0", "1"), default="1",
                   help="TF_ENABLE_ONEDNN_OPTS for TensorFlow (default 1: oneDNN kernels, AVX-512; aslfs.env "
                        "defaults to 0); an exported TF_ENABLE_ONEDNN_OPTS wins")
    p.add_argument("--dtype", default=None, help="Keras dtype policy, e.g. mixed_bfloat16 (default: float32)")
    p.add_argument("--skip-train", action="store_true", help="only measure the encoder latency")
    p.add_argument("--skip-latency", action="store_true", help="only measure the training step")
    p.add_argument("--out", help="append the result as one JSON line to this file")
    return p.parse_args(argv)


def _set_threads(threads: int) -> None:
    """Pin the backend's thread pools (must run before the backend initialises)."""
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}"


def main(argv=None) -> dict:
    args = _parse(argv)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", args.onednn)  # before TensorFlow is imported
    from aslfs import env

    env.setup()
    _set_threads(args.threads)
    import keras
    import numpy as np

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # benchmark-only: thread pools

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)

    from aslfs.models.fingerspeller import build_model

    if args.dtype:
        keras.config.set_dtype_policy(args.dtype)
    model = build_model(args.preset)
    cfg = model.model_config
    rng = np.random.default_rng(0)
    jit = {"auto": "auto", "on": True, "off": False}[args.jit]
    result = {"preset": args.preset, "backend": keras.backend.backend(), "jit": args.jit,
              "dtype": keras.config.dtype_policy().name, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
              "batch": args.batch, "frames": args.frames, "valid": args.valid, "threads": args.threads,
              "machine": platform.processor() or platform.machine(), "load_avg_1m": os.getloadavg()[0]}

    if not args.skip_train:
        mask = np.zeros((args.batch, args.frames), bool)
        mask[:, : args.valid] = True
        landmarks = rng.normal(size=(args.batch, args.frames, 130, 3)).astype("float32") * mask[..., None, None]
        x = {"landmarks": landmarks, "padding_mask": mask,
             "decoder_input_ids": rng.integers(0, cfg.vocab_size, (args.batch, cfg.max_target_len)).astype("int32")}
        y = {"logits": rng.integers(0, cfg.vocab_size, (args.batch, cfg.max_target_len)).astype("int32")}
        losses = {"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
        weights = {"logits": 0.98 * (0.6 if cfg.backward_decoder else 1.0)}
        if cfg.backward_decoder:
            x["backward_decoder_input_ids"] = x["decoder_input_ids"].copy()
            y["backward_logits"] = y["logits"].copy()
            losses["backward_logits"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            weights["backward_logits"] = 0.98 * 0.4
        if cfg.confidence_head:
            y["confidence_logit"] = rng.random((args.batch, 1)).astype("float32")
            losses["confidence_logit"] = keras.losses.BinaryCrossentropy(from_logits=True)
            weights["confidence_logit"] = 0.02
        model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.08), loss=losses, loss_weights=weights,
                      jit_compile=jit)
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            model.train_on_batch(x, y)
        result["train_warmup_s"] = round(time.perf_counter() - t0, 2)
        times, cpu = [], []
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            loss = model.train_on_batch(x, y)
            float(np.asarray(loss if np.ndim(loss) == 0 else loss[0]))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        result["train_step_s"] = [round(t, 3) for t in times]
        result["train_step_median_s"] = round(statistics.median(times), 3)
        result["train_step_min_s"] = round(min(times), 3)
        # process CPU time (all threads): less sensitive to other processes on a shared machine
        result["train_step_cpu_median_s"] = round(statistics.median(cpu), 3)

    if not args.skip_latency:
        one = rng.normal(size=(1, args.latency_frames, 130, 3)).astype("float32")
        encode = _compiled_encode(model, xla=args.jit == "on")
        t0 = time.perf_counter()
        np.asarray(encode(one))
        result["encode_compile_s"] = round(time.perf_counter() - t0, 2)
        times = []
        for _ in range(max(args.repeats, 5)):
            t0 = time.perf_counter()
            np.asarray(encode(one))
            times.append(time.perf_counter() - t0)
        result["latency_frames"] = args.latency_frames
        result["encode_b1_median_ms"] = round(1000 * statistics.median(times), 1)

    print(json.dumps(result))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(result) + "\n")
    return result


def _compiled_encode(model, xla: bool):
    """``model.encode`` (inference, no padding mask) compiled with the backend's compiler (TensorFlow: a graph
    function, with XLA if ``xla``; JAX: ``jax.jit``)."""
    import keras

    def encode(landmarks):
        encoded, _ = model.encode(landmarks, None, training=False)
        return encoded

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(encode, jit_compile=xla, reduce_retracing=True)
    if keras.backend.backend() == "jax":
        import jax

        state = [v.value for v in model.variables]

        @jax.jit
        def stateless(values, landmarks):
            with keras.StatelessScope(state_mapping=list(zip(model.variables, values))):
                return encode(landmarks)

        return lambda landmarks: stateless(state, landmarks)
    return encode


if __name__ == "__main__":
    main()
