"""The learning-rate schedule: golden values and how Keras steps it under gradient accumulation."""

import math

import keras
import numpy as np
import pytest

from aslfs.training.schedule import WarmupCosine, make_schedule, warmup_cosine_lr

PEAK = 4.5e-3


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),
    (500, 2.25e-3),  # half-way through the 1,000 warm-up steps
    (999, 4.5e-3 * 999 / 1000),
    (1000, 4.5e-3),  # peak at the end of warm-up
    (1000 + 29000 / 3, 3.375e-3),  # cosine at 1/3: ½(1 + cos(π/3)) = 0.75
    (15500, 2.25e-3),  # cosine half-way: ½
    (30000, 0.0),  # end of the schedule
    (30100, 0.0),  # past the end (the last partial epoch): stays 0
])
def test_golden_values(step, expected):
    assert warmup_cosine_lr(step, PEAK, 1000, 30000) == pytest.approx(expected, abs=1e-12)
    sched = WarmupCosine(PEAK, 1000, 30000)
    assert float(keras.ops.convert_to_numpy(sched(step))) == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_make_schedule_uses_floor_of_batches_per_epoch():
    # N = 6,463 examples, batch 64: the reference's schedule unit is ⌊N/64⌋ = 100 micro-steps per epoch
    sched = make_schedule(PEAK, epochs=300, warmup_epochs=10, examples_per_epoch=6463, batch_size=64)
    assert (sched.warmup_steps, sched.total_steps) == (1000, 30000)
    assert WarmupCosine.from_config(sched.get_config()).get_config() == sched.get_config()


def test_schedule_is_stepped_per_micro_batch_under_accumulation():
    """Keras evaluates the schedule at the micro-step counter; optimizer steps = micro-steps // accumulation."""
    sched = WarmupCosine(1.0, 10, 40)
    opt = keras.optimizers.AdamW(sched, weight_decay=0.0, gradient_accumulation_steps=4)
    var = keras.Variable(np.ones(3, np.float32))
    opt.build([var])
    grads = [np.ones(3, np.float32)]
    for micro in range(1, 11):
        before = var.numpy().copy()
        opt.apply(grads, [var])
        assert int(opt.iterations.numpy()) == micro // 4
        changed = not np.allclose(before, var.numpy())
        assert changed == (micro % 4 == 0)  # weights move only on every 4th micro-batch
    assert float(keras.ops.convert_to_numpy(opt.learning_rate)) == pytest.approx(warmup_cosine_lr(10, 1.0, 10, 40))
    # the first update (after micro-batches 0..3) uses lr(3) = 0.3; Adam's first step moves by lr·m̂/(√v̂+ε) ≈ lr
    opt2 = keras.optimizers.AdamW(WarmupCosine(1.0, 10, 40), weight_decay=0.0, gradient_accumulation_steps=4)
    v2 = keras.Variable(np.zeros(1, np.float32))
    opt2.build([v2])
    for _ in range(4):
        opt2.apply([np.ones(1, np.float32)], [v2])
    assert float(v2.numpy()[0]) == pytest.approx(-0.3, rel=1e-4)  # lr(3) = 0.3 for the first update
    assert math.isfinite(float(v2.numpy()[0]))
