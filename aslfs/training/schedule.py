"""The learning-rate schedule of the reference (docs/reference.md §5): linear warm-up from 0, then a half cosine to 0.

It is HF ``get_cosine_schedule_with_warmup`` with ``num_cycles = 0.5``, stepped once per **micro-batch**:

- ``lr(s) = peak · s / W`` for ``s < W``,
- ``lr(s) = peak · ½ · (1 + cos(π · p))`` with ``p = (s − W) / (S − W)`` otherwise,

where ``s`` is the number of micro-batches already done, ``W = warmup_epochs · ⌊N / batch⌋`` and
``S = epochs · ⌊N / batch⌋`` (N = examples per epoch). The loader emits ``⌈N / batch⌉`` micro-batches per epoch, so
the last epoch runs slightly past ``S``; the reference's cosine rises again there by at most ``peak · ½ · (1 − cos(π ·
e))`` with ``e`` the overshoot fraction (about 1e-7 · peak); here ``p`` is clipped to 1, so the rate stays exactly 0.

**Micro-steps and optimizer steps under gradient accumulation.** Keras 3 optimizers keep the counter ``_iterations``
of *micro*-steps (calls to ``apply``) and expose ``iterations = _iterations // accumulation_steps`` (optimizer
steps, also the Adam bias-correction step − 1). A :class:`~keras.optimizers.schedules.LearningRateSchedule` is called
with ``_iterations``, i.e. per micro-batch, exactly like the reference's per-micro-batch ``scheduler.step()``. With
``k`` accumulation steps the update after micro-batches ``k·j … k·j + k − 1`` uses ``lr(k·j + k − 1)``: the reference
also steps its scheduler on every micro-batch and reads the rate at the optimizer step (after ``k·j + k − 1``
scheduler steps), so both apply the same rate.
"""

from __future__ import annotations

import math

import keras
from keras import ops


def warmup_cosine_lr(step: float, peak_lr: float, warmup_steps: int, total_steps: int) -> float:
    """Plain-Python value of the schedule at micro-step ``step`` (for logging and tests)."""
    if step < warmup_steps:
        return peak_lr * step / max(1, warmup_steps)
    progress = min(max((step - warmup_steps) / max(1, total_steps - warmup_steps), 0.0), 1.0)
    return peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))


@keras.saving.register_keras_serializable(package="aslfs")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak_lr`` over ``warmup_steps`` micro-steps, then half cosine to 0 at ``total_steps``.

    Args:
        peak_lr: the rate at the end of the warm-up.
        warmup_steps: micro-steps of warm-up (``warmup_epochs · steps_per_epoch``).
        total_steps: micro-steps of the whole schedule (``epochs · steps_per_epoch``); the rate is 0 from there on.
    """

    def __init__(self, peak_lr: float, warmup_steps: int, total_steps: int):
        if warmup_steps < 0 or total_steps < 1 or warmup_steps > total_steps:
            raise ValueError(f"WarmupCosine: need 0 <= warmup_steps <= total_steps, total_steps >= 1; got "
                             f"warmup_steps={warmup_steps}, total_steps={total_steps}")
        self.peak_lr = float(peak_lr)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(self.warmup_steps)
        warm = self.peak_lr * step / max(1.0, warmup)
        progress = ops.clip((step - warmup) / max(1.0, float(self.total_steps - self.warmup_steps)), 0.0, 1.0)
        cosine = self.peak_lr * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, warm, cosine)

    def get_config(self) -> dict:
        return {"peak_lr": self.peak_lr, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def steps_per_epoch_for_schedule(examples_per_epoch: int, batch_size: int) -> int:
    """``⌊N / batch⌋`` (at least 1): the reference's schedule unit (its loader keeps the last partial batch)."""
    return max(1, examples_per_epoch // batch_size)


def make_schedule(peak_lr: float, epochs: int, warmup_epochs: float, examples_per_epoch: int,
                  batch_size: int) -> WarmupCosine:
    """The reference schedule for a run of ``epochs`` epochs over ``examples_per_epoch`` examples per epoch."""
    per_epoch = steps_per_epoch_for_schedule(examples_per_epoch, batch_size)
    total = max(1, epochs * per_epoch)
    warmup = min(total, int(round(warmup_epochs * per_epoch)))
    return WarmupCosine(peak_lr, warmup, total)
