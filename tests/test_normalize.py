"""Global normalisation against values computed by hand."""

import numpy as np

from aslfs.data.normalize import normalize_np


def test_hand_computed_values():
    frames = np.full((2, 390), np.nan, np.float32)
    # landmark 0: x = 1 then 3, y = 2 then 2 (σ = 0), z = 0 then NaN; landmark 1 x = 5 in frame 0
    frames[0, 0], frames[1, 0] = 1.0, 3.0
    frames[0, 1] = 5.0
    frames[0, 130], frames[1, 130] = 2.0, 2.0
    frames[0, 260] = 0.0
    out = normalize_np(frames)
    # x values {1, 3, 5}: mean 3, population std sqrt(8/3)
    s = np.sqrt(8 / 3)
    assert np.allclose(out[:, 0, 0], [-2 / s, 0.0]) and np.isclose(out[0, 1, 0], 2 / s)
    assert (out[:, 0, 1] == 0).all(), "σ = 0 maps to 0"
    assert out[0, 0, 2] == 0 and out[1, 0, 2] == 0
    assert (out[:, 2:, :] == 0).all(), "missing landmarks become 0"


def test_all_nan_sequence_is_zero():
    out = normalize_np(np.full((4, 390), np.nan, np.float32))
    assert out.shape == (4, 130, 3) and (out == 0).all()


def test_per_axis_standardised():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(50, 390)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    out = normalize_np(x)
    valid = np.isfinite(x.reshape(50, 3, 130).transpose(0, 2, 1))
    for a in range(3):
        v = out[..., a][valid[..., a]]
        assert abs(v.mean()) < 1e-5 and abs(v.std() - 1) < 1e-4


def test_inf_counts_as_missing():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 390)).astype(np.float32)
    y = x.copy()
    y[3, 7] = np.inf
    x[3, 7] = np.nan
    assert np.array_equal(normalize_np(x), normalize_np(y))
