import math

import numpy as np
from keras import ops

from aslfs.layers.relative_position_embedding import RelativePositionEmbedding
from aslfs.layers.relative_position_multi_head_attention import RelativePositionMultiHeadAttention, relative_shift
from aslfs.layers.rotary_embedding import RotaryEmbedding, rotary_table
from aslfs.layers.rotary_multi_head_attention import RotaryMultiHeadAttention, apply_rotary


def test_relative_shift_selects_offset_i_minus_j():
    t = 5
    x = np.random.default_rng(0).normal(size=(2, 3, t, 2 * t - 1)).astype("float32")
    out = ops.convert_to_numpy(relative_shift(x))
    assert out.shape == (2, 3, t, t)
    for i in range(t):
        for j in range(t):
            np.testing.assert_array_equal(out[:, :, i, j], x[:, :, i, t - 1 - i + j])


def test_relative_table_interleaves_sin_cos_of_offsets():
    d, t = 8, 4
    table = ops.convert_to_numpy(RelativePositionEmbedding(d)(np.zeros((1, t, d), "float32")))
    assert table.shape == (2 * t - 1, d)
    for k, r in enumerate(range(t - 1, -t, -1)):
        for i in range(d // 2):
            w = 10000.0 ** (-2 * i / d)
            np.testing.assert_allclose(table[k, 2 * i], math.sin(r * w), atol=1e-6)
            np.testing.assert_allclose(table[k, 2 * i + 1], math.cos(r * w), atol=1e-6)


def test_rotary_table_and_rotate_half():
    table = rotary_table(10, 4)  # inv_freq = [1, 0.01]
    np.testing.assert_allclose(table[0, 3], np.cos([3, 0.03, 3, 0.03]), rtol=1e-6)
    np.testing.assert_allclose(table[1, 3], np.sin([3, 0.03, 3, 0.03]), rtol=1e-6)
    x = np.array([1.0, 2.0, 3.0, 4.0], "float32").reshape(1, 1, 1, 4)
    cos, sin = np.ones((1, 4), "float32") * 0.5, np.ones((1, 4), "float32") * 2.0
    out = ops.convert_to_numpy(apply_rotary(x, cos, sin)).ravel()
    np.testing.assert_allclose(out, 0.5 * np.array([1, 2, 3, 4]) + 2.0 * np.array([-3, -4, 1, 2]))
    sliced = ops.convert_to_numpy(RotaryEmbedding(4, max_len=10)(np.zeros((1, 7, 8), "float32")))
    np.testing.assert_array_equal(sliced, table[:, :7])


def test_rotary_scores_depend_on_relative_offset_only():
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(1, 1, 1, 8)).astype("float32"), rng.normal(size=(1, 1, 1, 8)).astype("float32")
    table = rotary_table(64, 8)

    def score(i, j):
        qi = ops.convert_to_numpy(apply_rotary(q, table[0, i:i + 1], table[1, i:i + 1]))
        kj = ops.convert_to_numpy(apply_rotary(k, table[0, j:j + 1], table[1, j:j + 1]))
        return float((qi * kj).sum())

    np.testing.assert_allclose(score(3, 1), score(40, 38), rtol=1e-4)
    np.testing.assert_allclose(score(0, 5), score(20, 25), rtol=1e-4)


def _pad_invariance(layer, position_fn):
    rng = np.random.default_rng(2)
    valid = rng.normal(size=(1, 6, 16)).astype("float32")
    outs = []
    for total in (6, 11):
        x = np.concatenate([valid, rng.normal(size=(1, total - 6, 16)).astype("float32") * 100], axis=1)
        mask = (np.arange(total) < 6).reshape(1, 1, total)  # (B, 1, T): keys
        outs.append(ops.convert_to_numpy(layer(x, position_fn(total), attention_mask=mask))[:, :6])
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)


def test_attention_layers_ignore_masked_keys_and_counts():
    relative = RelativePositionMultiHeadAttention(16, 4, dropout=0.0)
    _pad_invariance(relative, lambda t: RelativePositionEmbedding(16)(np.zeros((1, t, 16), "float32")))
    # q, k, v, out (with bias) + position projection (no bias) + u, v
    assert sum(int(np.prod(w.shape)) for w in relative.trainable_weights) == 4 * (16 * 16 + 16) + 16 * 16 + 2 * 16
    rotary = RotaryMultiHeadAttention(16, 4)
    _pad_invariance(rotary, lambda t: RotaryEmbedding(4, max_len=32)(np.zeros((1, t, 16), "float32")))
    assert sum(int(np.prod(w.shape)) for w in rotary.trainable_weights) == 4 * 16 * 16  # no biases


def test_softmax_attention_custom_gradient_matches_autodiff():
    import tensorflow as tf  # the default test backend; the JAX subprocess test trains through the same op

    from aslfs.layers.attention_ops import softmax_attention
    from aslfs.layers.masking import attention_bias, attention_mask_from_padding

    rng = np.random.default_rng(3)
    scores = tf.constant(rng.normal(size=(2, 3, 5, 5)).astype("float32"))
    value = tf.constant(rng.normal(size=(2, 5, 3, 4)).astype("float32"))
    padding = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    bias = attention_bias(attention_mask_from_padding(padding))
    weights = tf.constant(rng.normal(size=(2, 5, 3, 4)).astype("float32"))

    def plain(s, v):
        probs = ops.softmax(s + bias, axis=-1)
        return ops.einsum("bhqk,bkhd->bqhd", probs, v)

    results = []
    for fn in (plain, lambda s, v: softmax_attention(s, v, bias)):
        with tf.GradientTape() as tape:
            tape.watch([scores, value])
            out = fn(scores, value)
            loss = tf.reduce_sum(out * weights)
        results.append([out, *tape.gradient(loss, [scores, value])])
    for a, b in zip(*results):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)
    assert np.all(ops.convert_to_numpy(results[1][1])[0, :, :, 3:] == 0.0)  # no gradient to masked keys


def test_additive_bias_equals_boolean_mask():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 7, 16)).astype("float32")
    padding = np.arange(7)[None, :] < np.array([[5], [7]])
    from aslfs.layers.masking import attention_bias, attention_mask_from_padding

    mask = attention_mask_from_padding(padding)
    for layer, pos in ((RelativePositionMultiHeadAttention(16, 4, dropout=0.0), RelativePositionEmbedding(16)(x)),
                       (RotaryMultiHeadAttention(16, 4), RotaryEmbedding(4, 16)(x))):
        a = ops.convert_to_numpy(layer(x, pos, attention_mask=mask))
        b = ops.convert_to_numpy(layer(x, pos, attention_bias=attention_bias(mask)))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
