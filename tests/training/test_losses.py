"""Loss terms and their combinations on fixed logits (hand-derived golden values)."""

import math

import numpy as np
import pytest
from keras import ops

from aslfs.training.losses import (LossConfig, confidence_bce, ctc_labels, ctc_loss, sequence_cross_entropy,
                                   training_losses)

LN2, LN3, LN6 = math.log(2), math.log(3), math.log(6)


def f(x):
    return float(ops.convert_to_numpy(x))


def fixed():
    # position 0: uniform over 3 classes (CE ln 3); position 1: probabilities 1/6, 2/6, 3/6, target 2 (CE ln 2)
    logits = np.array([[[0.0, 0.0, 0.0], [0.0, LN2, LN3]]], np.float32)
    targets = np.array([[1, 2]], np.int32)
    return targets, logits


def test_cross_entropy_over_all_positions():
    targets, logits = fixed()
    assert f(sequence_cross_entropy(targets, logits)) == pytest.approx((LN3 + LN2) / 2, rel=1e-6)


def test_label_smoothing():
    targets, logits = fixed()
    eps = 0.1
    # (1 − ε)·nll + ε·mean_c(−log p_c): position 0 → ln 3; position 1 → 0.9·ln 2 + 0.1·(ln 6 + ln 3 + ln 2)/3
    expected = (LN3 + (1 - eps) * LN2 + eps * (LN6 + LN3 + LN2) / 3) / 2
    assert f(sequence_cross_entropy(targets, logits, eps)) == pytest.approx(expected, rel=1e-6)


def test_confidence_bce():
    # logit 0 → −(0.3·ln ½ + 0.7·ln ½) = ln 2; logit ln 3 (σ = ¾) with target 1 → −ln ¾
    got = confidence_bce(np.array([0.3, 1.0], np.float32), np.array([[0.0], [LN3]], np.float32))
    assert f(got) == pytest.approx((LN2 - math.log(0.75)) / 2, rel=1e-6)
    big = confidence_bce(np.array([0.0], np.float32), np.array([[80.0]], np.float32))
    assert f(big) == pytest.approx(80.0, rel=1e-6)  # stable for large logits


def test_round2_combination_golden():
    fwd_t, _ = fixed()
    fwd = np.zeros((1, 2, 3), np.float32)  # CE_fwd = ln 3
    bwd = np.array([[[0.0, LN2, LN3], [0.0, LN2, LN3]]], np.float32)  # CE_bwd = ln 2 (targets 2, 2)
    y = {"token_ids": fwd_t, "backward_token_ids": np.array([[2, 2]], np.int32), "score": np.array([0.3], np.float32)}
    # (backward_length "batch": the longest forward target has 2 non-pad tokens, so both positions are scored)
    y_pred = {"logits": fwd, "backward_logits": bwd, "confidence_logit": np.zeros((1, 1), np.float32)}  # BCE = ln 2
    terms = training_losses(y, y_pred, np.ones((1, 4), bool), LossConfig())
    assert f(terms["ce"]) == pytest.approx(LN3, rel=1e-6)
    assert f(terms["ce_bwd"]) == pytest.approx(LN2, rel=1e-6)
    assert f(terms["bce"]) == pytest.approx(LN2, rel=1e-6)
    # 0.98·(0.6·ln 3 + 0.4·ln 2) + 0.02·ln 2 = 0.931560...
    assert f(terms["loss"]) == pytest.approx(0.98 * (0.6 * LN3 + 0.4 * LN2) + 0.02 * LN2, rel=1e-6)
    assert f(terms["loss"]) == pytest.approx(0.9315607, abs=2e-6)
    # round 1: only the forward CE
    r1 = training_losses({"token_ids": fwd_t}, {"logits": fwd}, np.ones((1, 4), bool), LossConfig())
    assert f(r1["loss"]) == pytest.approx(LN3, rel=1e-6) and set(r1) == {"ce", "loss"}


def test_ctc_golden_and_joint_weight():
    # one label, 3 real frames of 5, uniform logits over 4 classes (blank 3): 6 alignments of 4^-3 each
    token_ids = np.array([[0, 61, 59, 59]], np.int32)
    labels, lengths = ctc_labels(token_ids)
    assert ops.convert_to_numpy(lengths).tolist() == [1]
    logits = np.zeros((1, 5, 4), np.float32)
    mask = np.array([[True, True, True, False, False]])
    assert f(ctc_loss(token_ids, logits, mask, blank_id=3)) == pytest.approx(math.log(64 / 6), rel=1e-5)
    y = {"token_ids": token_ids}
    y_pred = {"logits": np.zeros((1, 4, 63), np.float32), "ctc_logits": logits}  # CE = ln 63
    terms = training_losses(y, y_pred, mask, LossConfig(ctc_weight=0.25, ctc_blank_id=3))
    assert f(terms["loss"]) == pytest.approx(0.75 * math.log(63) + 0.25 * math.log(64 / 6), rel=1e-5)


def test_ctc_impossible_alignment_counts_as_zero():
    token_ids = np.array([[0, 1, 2, 61], [1, 1, 61, 59]], np.int32)
    # row 0: 3 labels, 2 frames; row 1: "1 1" needs 3 frames (a blank between the repeats), has 2
    got = ctc_loss(token_ids, np.zeros((2, 3, 4), np.float32), np.array([[True, True, False]] * 2), blank_id=3)
    assert f(got) == 0.0
    # with 3 frames row 1 becomes feasible: the single path 1, blank, 1 has probability 4^-3; per label: ln 64 / 2
    ok = ctc_loss(token_ids[1:], np.zeros((1, 3, 4), np.float32), np.array([[True, True, True]]), blank_id=3)
    assert f(ok) == pytest.approx(math.log(64) / 2, rel=1e-5)


def test_cross_entropy_up_to_a_length():
    targets, logits = fixed()
    assert f(sequence_cross_entropy(targets, logits, length=1)) == pytest.approx(LN3, rel=1e-6)
    assert f(sequence_cross_entropy(targets, logits, length=2)) == pytest.approx((LN3 + LN2) / 2, rel=1e-6)
