"""Synthetic training batches and ``fit``-timed steps, shared by the step benchmarks that go through ``fit``
(``data_parallel``, ``gpu_train``): ``fit`` is what shards a batch over devices (TensorFlow's ``train_on_batch``
gives every replica the whole batch)."""

from __future__ import annotations

import time


def synthetic_batches(n: int, frames: int, seed: int = 0):
    """``(x, y)`` of ``n`` round-2 training rows: ``frames`` frames of which the first three quarters are real,
    random landmarks and targets."""
    import numpy as np

    rng = np.random.default_rng(seed)
    mask = np.ones((n, frames), bool)
    mask[:, frames * 3 // 4:] = False
    tokens = rng.integers(0, 59, (n, 33)).astype("int32")
    x = {"landmarks": rng.normal(size=(n, frames, 130, 3)).astype("float32"), "padding_mask": mask,
         "decoder_input_ids": tokens, "backward_decoder_input_ids": tokens}
    y = {"token_ids": tokens, "backward_token_ids": tokens, "score": rng.random(n).astype("float32")}
    return x, y


def timed_fit(model, x, y, batch: int, warmup: int) -> list[float]:
    """One epoch of ``model.fit`` over ``(x, y)`` in batches of ``batch``; the seconds between consecutive batch
    ends (the loss read back each step), the first ``warmup`` dropped."""
    import keras
    import numpy as np

    ends = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda _, logs: (float(logs["loss"]), ends.append(time.perf_counter())))
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    return [float(t) for t in np.diff(ends)[warmup:]]
