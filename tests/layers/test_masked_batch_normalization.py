import keras
import numpy as np
from keras import ops

from aslfs.layers.masked_batch_normalization import MaskedBatchNormalization


def _data(rng):
    x = rng.normal(size=(2, 6, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], bool)
    x[~mask] = 1e6  # garbage at pads
    x[1, 5, 0] = np.nan
    return x, mask


def test_training_statistics_ignore_pads_and_update_moving_stats():
    x, mask = _data(np.random.default_rng(0))
    bn = MaskedBatchNormalization(momentum=0.05, epsilon=1e-5)
    y = ops.convert_to_numpy(bn(x, padding_mask=mask, training=True))
    valid = x[mask]  # (6, 4)
    mean, var = valid.mean(0), valid.var(0)
    np.testing.assert_allclose(y[mask], (valid - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)
    # Moving statistics: Keras momentum 0.05 -> 95 % of the batch; variance unbiased (n / (n - 1)), as PyTorch.
    np.testing.assert_allclose(ops.convert_to_numpy(bn.moving_mean), 0.95 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(bn.moving_variance), 0.05 + 0.95 * var * 6 / 5, rtol=1e-5)


def test_inference_uses_moving_statistics():
    x, mask = _data(np.random.default_rng(1))
    bn = MaskedBatchNormalization(momentum=0.9)
    bn.build(x.shape)
    bn.moving_mean.assign(np.array([1.0, 2.0, 3.0, 4.0], "float32"))
    bn.moving_variance.assign(np.array([4.0, 4.0, 1.0, 1.0], "float32"))
    bn.gamma.assign(np.full(4, 2.0, "float32"))
    bn.beta.assign(np.full(4, 0.5, "float32"))
    y = ops.convert_to_numpy(bn(x, padding_mask=mask, training=False))
    expected = 2.0 * (x - [1, 2, 3, 4]) / np.sqrt(np.array([4, 4, 1, 1]) + 1e-5) + 0.5
    np.testing.assert_allclose(y[mask], expected[mask], rtol=1e-5)


def test_rank4_masked_and_unmasked():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, 3, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    y = ops.convert_to_numpy(MaskedBatchNormalization()(x, padding_mask=mask, training=True))
    valid = x[mask].reshape(-1, 4)
    np.testing.assert_allclose(y[mask].reshape(-1, 4), (valid - valid.mean(0)) / np.sqrt(valid.var(0) + 1e-5),
                               rtol=1e-4, atol=1e-5)
    y = ops.convert_to_numpy(MaskedBatchNormalization()(x, training=True))  # unmasked: every position
    flat = x.reshape(-1, 4)
    np.testing.assert_allclose(y.reshape(-1, 4), (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5),
                               rtol=1e-4, atol=1e-5)


def test_weights_and_config_round_trip():
    bn = MaskedBatchNormalization(momentum=0.05, epsilon=1e-5, name="bn")
    bn.build((None, None, 8))
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    clone = MaskedBatchNormalization.from_config(bn.get_config())
    assert clone.get_config() == bn.get_config()
    assert keras.saving.get_registered_name(MaskedBatchNormalization) == "aslfs>MaskedBatchNormalization"


def test_statistics_stay_accurate_for_a_large_mean():
    """The one-pass (shifted) moments must not lose precision when the mean dwarfs the spread."""
    rng = np.random.default_rng(3)
    x = (30.0 + 0.5 * rng.normal(size=(4, 50, 7, 8))).astype("float32")
    mask = np.arange(50)[None, :] < np.array([[50], [31], [12], [40]])
    y = ops.convert_to_numpy(MaskedBatchNormalization()(x, padding_mask=mask, training=True))
    valid = x[mask].reshape(-1, 8).astype(np.float64)
    expected = (x - valid.mean(0)) / np.sqrt(valid.var(0) + 1e-5)
    np.testing.assert_allclose(y[mask], expected[mask], atol=2e-3)
    first_padded = mask[::-1].copy()  # the first sequence is the shortest: frame (0, 0) is still real
    first_padded[0, 0] = False  # ... and now it is padding (shift 0): still correct, only less precise
    x[0, 0] = np.nan
    y = ops.convert_to_numpy(MaskedBatchNormalization()(x, padding_mask=first_padded, training=True))
    valid = x[first_padded].reshape(-1, 8).astype(np.float64)
    expected = (x - valid.mean(0)) / np.sqrt(valid.var(0) + 1e-5)
    np.testing.assert_allclose(y[first_padded], expected[first_padded], atol=0.2)
