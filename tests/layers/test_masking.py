import numpy as np
from keras import ops

from aslfs.layers.masking import (
    apply_padding_mask,
    attention_mask_from_padding,
    causal_attention_mask,
    masked_fill_value,
    masked_softmax,
    merge_attention_masks,
)


def test_masked_fill_value_is_dtype_minimum():
    assert masked_fill_value("float32") == float(np.finfo(np.float32).min)
    assert masked_fill_value("float16") == -65504.0
    assert np.isfinite(np.float16(masked_fill_value("float16")))


def test_attention_mask_from_padding_polarity():
    pad = np.array([[True, True, False]])
    keys = ops.convert_to_numpy(attention_mask_from_padding(pad))
    assert keys.shape == (1, 1, 3)
    np.testing.assert_array_equal(keys[0, 0], [True, True, False])
    both = ops.convert_to_numpy(attention_mask_from_padding(pad, pad))
    assert both.shape == (1, 3, 3)
    np.testing.assert_array_equal(both[0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_causal_mask_with_cache_index():
    full = ops.convert_to_numpy(causal_attention_mask(3))
    np.testing.assert_array_equal(full[0], np.tril(np.ones((3, 3), bool)))
    step = ops.convert_to_numpy(causal_attention_mask(1, 5, cache_index=2))
    np.testing.assert_array_equal(step[0, 0], [True, True, True, False, False])


def test_merge_attention_masks():
    a = np.array([[[True, True, False]]])
    b = causal_attention_mask(3)
    merged = ops.convert_to_numpy(merge_attention_masks(a, None, b))
    np.testing.assert_array_equal(merged[0], [[1, 0, 0], [1, 1, 0], [1, 1, 0]])
    assert merge_attention_masks(None, None) is None


def test_apply_padding_mask_removes_nan_garbage():
    x = np.full((1, 3, 2, 2), np.nan, np.float32)
    x[0, :2] = 1.0
    out = ops.convert_to_numpy(apply_padding_mask(x, np.array([[True, True, False]])))
    np.testing.assert_array_equal(out[0, :2], 1.0)
    np.testing.assert_array_equal(out[0, 2], 0.0)


def test_masked_softmax_ignores_masked_keys_and_garbage():
    scores = np.array([[[[1.0, 2.0, np.inf]]]], np.float32)  # (B=1, H=1, Lq=1, Lk=3)
    mask = attention_mask_from_padding(np.array([[True, True, False]]))  # (1, 1, 3): head axis inserted
    probs = ops.convert_to_numpy(masked_softmax(scores, mask))
    e = np.exp([1.0, 2.0])
    np.testing.assert_allclose(probs[0, 0, 0], [e[0] / e.sum(), e[1] / e.sum(), 0.0], rtol=1e-6)
    fully_masked = ops.convert_to_numpy(masked_softmax(np.zeros((1, 1, 1, 2), np.float32), np.zeros((1, 1, 2), bool)))
    np.testing.assert_allclose(fully_masked, 0.5)
