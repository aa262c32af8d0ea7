"""The optimizer and numeric settings of a training (module docstring of :mod:`aslfs.training.trainer`)."""

from __future__ import annotations

import keras


def resolve_mixed_precision(mode: str) -> bool:
    """``on`` / ``off``, or ``auto``: on when Keras sees a GPU."""
    if mode in ("on", "off"):
        return mode == "on"
    try:
        return bool(keras.distribution.list_devices("gpu"))
    except Exception:  # backends without device listing, or no GPU runtime
        return False


def jit_mode(mode: str):
    """``train.jit_compile`` as Keras takes it."""
    return {"auto": "auto", "on": True, "off": False}[mode]


def make_optimizer(schedule, round_params, train_params):
    accum = round_params.grad_accum if round_params.grad_accum > 1 else None
    return keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=round_params.weight_decay, beta_1=train_params.beta_1,
        beta_2=train_params.beta_2, epsilon=train_params.epsilon,
        global_clipnorm=train_params.clipnorm or None, gradient_accumulation_steps=accum)
