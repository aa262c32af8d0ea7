"""Per-sample pipeline: resize/pad golden values, the order and probabilities of flip and CutMix, targets in the
sample, and the round-2 epoch sampling."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from aslfs.config import AugmentParams, SamplingParams
from aslfs.data import augment as A
from aslfs.data.sample import (PartnerSampler, linear_resize_weights, make_eval_sample, make_train_sample,
                               resize_or_pad, resize_time, round2_epoch_indices, score_column)
from aslfs.errors import DataError
from aslfs.vocab import END_ID, MASK_ID, PAD_ID, START_ID, encode

NO_LIST = A.Compose(())


def ramp(t, n=130):
    return np.broadcast_to((np.arange(t, dtype=np.float32) + 1)[:, None, None], (t, n, 3)).copy()


def seq(t, seed=0):
    return np.random.default_rng(seed).standard_normal((t, 130, 3)).astype(np.float32)


# ---------------------------------------------------------------------------------------------------- resize / pad


def test_linear_resize_golden():
    # T = 4 → 2: s = 2, src = 0.5, 2.5
    x = np.array([0.0, 10.0, 20.0, 40.0], np.float32)[:, None]
    assert np.allclose(resize_time(x, 2), [[5.0], [30.0]])
    # T = 5 → 3: s = 5/3, src = 1/3, 2, 11/3 ; a ramp returns its source positions
    y = resize_time(np.arange(5, dtype=np.float32)[:, None, None], 3)
    assert np.allclose(y[:, 0, 0], [1 / 3, 2.0, 11 / 3], atol=1e-6)
    lo, hi, w = linear_resize_weights(5, 3)
    assert lo.tolist() == [0, 2, 3] and hi.tolist() == [1, 2, 4] and np.allclose(w, [1 / 3, 0, 2 / 3], atol=1e-6)
    # upsampling clamps at the edges: T = 2 → 4: src = −0.25, 0.25, 0.75, 1.25
    y = resize_time(np.array([0.0, 4.0], np.float32)[:, None], 4)
    assert np.allclose(y[:, 0], [0.0, 1.0, 3.0, 4.0])


def test_nearest_resize_golden():
    x = ramp(450)
    y = resize_time(x, 384, "nearest")
    src = y[:, 0, 0] - 1
    assert np.array_equal(src, (np.arange(384) * 450) // 384)
    with pytest.raises(ValueError):
        resize_time(x, 384, "cubic")


@pytest.mark.parametrize("t", [385, 450, 777, 2000])
def test_linear_resize_matches_keras_image_resize(t):
    keras = pytest.importorskip("keras")
    x = seq(t)
    ref = keras.ops.convert_to_numpy(keras.ops.image.resize(
        x[None], (384, 130), interpolation="bilinear", antialias=False, data_format="channels_last"))[0]
    assert np.abs(ref - resize_time(x, 384, "linear")).max() <= 1e-6


@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_resize_or_pad(mode):
    x = seq(100)
    out, mask = resize_or_pad(x, 384, mode)
    assert out.shape == (384, 130, 3) and out.dtype == np.float32 and mask.dtype == bool
    assert np.array_equal(out[:100], x) and (out[100:] == 0).all() and mask.sum() == 100 and mask[:100].all()
    out, mask = resize_or_pad(seq(384), 384, mode)
    assert np.array_equal(out, seq(384)) and mask.all()
    out, mask = resize_or_pad(seq(500), 384, mode)
    assert out.shape == (384, 130, 3) and mask.all()


# ---------------------------------------------------------------------------------------------------- samples


def test_eval_sample_exact():
    x = seq(50)
    s = make_eval_sample(x, "ab 1", score=0.4)
    assert set(s) == {"landmarks", "padding_mask", "decoder_input_ids", "labels", "seq_len", "score"}
    ids = encode("ab 1")
    assert s["labels"].tolist() == ids + [END_ID] + [PAD_ID] * (33 - 5)
    assert s["decoder_input_ids"].tolist() == [START_ID] + ids + [END_ID] + [PAD_ID] * (33 - 6)
    assert s["labels"].dtype == np.int32 and s["decoder_input_ids"].shape == (33,)
    assert s["seq_len"] == 50 and np.isclose(s["score"], 0.4) and s["padding_mask"].sum() == 50
    assert np.array_equal(s["landmarks"][:50], x)
    assert make_eval_sample(x, "a")["score"] == 1.0


def test_train_sample_flip_then_cutmix_then_list_then_pad():
    x, x2 = seq(40), seq(60, seed=1)
    aug = A.Augmentation(flip_p=1.0, cutmix_p=1.0, transforms=NO_LIST, round=2)
    calls = []

    def partner(rng):
        calls.append(1)
        return x2, "xyzw", 0.0

    rng = np.random.default_rng(5)
    trace = []
    s = make_train_sample(x, "abcd", 1.0, None, rng, aug, partner, decoder_mask_p=0.0, trace=trace)
    assert trace == ["flip", "cutmix"] and len(calls) == 1
    # replay the draws: flip coin, cutmix coin, then cutmix's c and order coin
    r = np.random.default_rng(5)
    r.random(), r.random()
    y, ph, sc = A.outer_cutmix(A.flip(x), "abcd", 1.0, x2, "xyzw", 0.0, r)
    assert np.array_equal(s["landmarks"][: len(y)], y) and s["padding_mask"].sum() == len(y)
    assert s["labels"][: len(ph)].tolist() == encode(ph) and np.isclose(s["score"], sc)
    assert s["seq_len"] == 40, "raw T before augmentation"


def test_train_sample_probabilities_and_partner_calls():
    aug = A.build_augmentation(AugmentParams(), 2)
    aug = A.Augmentation(aug.flip_p, aug.cutmix_p, NO_LIST, 2)
    x = seq(6)
    rng = np.random.default_rng(0)
    n = 4000
    counts = Counter()
    calls = [0]

    def partner(rng):
        calls[0] += 1
        return x, "xy", 0.5

    for _ in range(n):
        trace = []
        make_train_sample(x, "ab", 1.0, 6, rng, aug, partner, max_len=8, trace=trace)
        counts.update(trace)
    assert abs(counts["flip"] / n - 0.5) < 0.03 and abs(counts["cutmix"] / n - 0.5) < 0.03
    assert calls[0] == counts["cutmix"], "partner loaded only when CutMix fires"
    # no partner: CutMix skipped
    trace = []
    for _ in range(50):
        make_train_sample(x, "ab", 1.0, 6, rng, aug, lambda r: None, max_len=8, trace=trace)
        make_train_sample(x, "ab", 1.0, 6, rng, aug, None, max_len=8, trace=trace)
    assert "cutmix" not in trace


def test_train_sample_decoder_masking_rate():
    aug = A.Augmentation(0.0, 0.0, NO_LIST, 1)
    rng = np.random.default_rng(0)
    masked, n = 0, 2000
    for _ in range(n):
        s = make_train_sample(seq(4), "hello", None, None, rng, aug, None, max_len=8, decoder_mask_p=0.2)
        assert s["labels"].tolist()[:6] == encode("hello") + [END_ID] and MASK_ID not in s["labels"]
        assert s["decoder_input_ids"][0] == START_ID
        masked += (s["decoder_input_ids"][1:] == MASK_ID).sum()
    assert abs(masked / (n * 32) - 0.2) < 0.01


def test_full_round2_sample_shapes():
    params, sampling = AugmentParams(), SamplingParams()
    aug = A.build_augmentation(params, 2)
    rng = np.random.default_rng(0)
    for seed in range(40):
        t = int(rng.integers(1, 600))
        s = make_train_sample(seq(t, seed), "hello world", 0.9, None, rng, aug,
                              lambda r: (seq(int(r.integers(1, 300))), "another one", 0.2),
                              max_len=sampling.max_len, resize_mode=sampling.resize_mode,
                              decoder_mask_p=params.decoder_mask_p)
        assert s["landmarks"].shape == (384, 130, 3) and s["landmarks"].dtype == np.float32
        assert s["padding_mask"].shape == (384,) and s["padding_mask"][0]
        assert (s["landmarks"][~s["padding_mask"]] == 0).all()
        assert s["seq_len"] == t and 0.0 <= s["score"] <= 1.0


def test_bad_input_is_a_data_error():
    with pytest.raises(DataError):
        make_eval_sample(np.zeros((0, 130, 3), np.float32), "a")


# ---------------------------------------------------------------------------------------------------- round 2 sampling


def table():
    return pd.DataFrame({
        "sequence_id": np.arange(11),
        "participant_id": [1, 1, 2, 2, 3, 1, 1, 1, 2, 2, 4],
        "phrase": ["a", "b", "c", "d", "e", "s1", "s1", "s1", "s2", "s3", "s3"],
        "is_sup": [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
        "score": [0.5, 1.4, -0.2, 0.9, 0.0, np.nan, np.nan, np.nan, 0.7, np.nan, np.nan],
    })


def test_round2_epoch_indices():
    df = table()
    rng = np.random.default_rng(0)
    picks = Counter()
    for _ in range(3000):
        idx = round2_epoch_indices(df, rng)
        assert idx[:5].tolist() == [0, 1, 2, 3, 4] and len(idx) == 5 + 3
        assert df["phrase"].iloc[idx[5:]].tolist() == ["s1", "s2", "s3"]
        picks.update(idx[5:].tolist())
    assert picks[8] == 3000
    assert all(abs(picks[i] / 3000 - 1 / 3) < 0.03 for i in (5, 6, 7))
    assert all(abs(picks[i] / 3000 - 1 / 2) < 0.03 for i in (9, 10))
    assert round2_epoch_indices(df[df.is_sup == 0], rng).tolist() == [0, 1, 2, 3, 4]


def test_score_column():
    df = table()
    s = score_column(df)
    assert s.dtype == np.float32
    assert s.tolist() == [0.5, 1.0, 0.0, pytest.approx(0.9), 0.0] + [0.5] * 6
    assert score_column(df.drop(columns="score")).tolist() == [1.0] * 5 + [0.5] * 6
    bad = df.copy()
    bad.loc[3, "score"] = np.nan
    with pytest.raises(DataError, match="sequence_id 3"):
        score_column(bad)


def test_partner_sampler():
    df = table()
    ps = PartnerSampler(df)
    rng = np.random.default_rng(0)
    assert ps(4, rng) is None and ps(10, rng) is None, "participants 3 and 4 have a single sequence"
    got = Counter(ps(0, rng) for _ in range(4000))
    assert set(got) == {1, 5, 6, 7} and all(abs(c / 4000 - 0.25) < 0.03 for c in got.values())
    got = Counter(ps(8, rng) for _ in range(300))
    assert set(got) == {2, 3, 9}
