"""BatchNormalization whose batch statistics use valid frames only."""

from __future__ import annotations

import keras
from keras import ops

from aslfs.training import distribution


@keras.saving.register_keras_serializable(package="aslfs")
class MaskedBatchNormalization(keras.layers.Layer):
    """Batch normalisation over the last (channel) axis with statistics over valid frames only.

    In training the mean and (biased) variance of each channel are computed over every position ``(b, t, ...)``
    whose frame is real, and the moving statistics are updated as ``moving = momentum * moving + (1 - momentum) *
    batch`` (Keras momentum = 1 − PyTorch momentum). The moving variance is updated with the *unbiased* batch
    variance (n / (n − 1)), as PyTorch's BatchNorm does, so ported and natively trained statistics mean the same.
    In inference the moving statistics are used. Moments are computed in float32. Under data-parallel training the
    moments are those of the global batch on every backend (synchronised BatchNorm, :mod:`aslfs.training.distribution`).

    Args:
        momentum: float. Keras momentum of the moving statistics. Defaults to 0.9.
        epsilon: float. Added to the variance. Defaults to 1e-5 (PyTorch's default).
        center: bool. Learn a shift ``beta``. Defaults to True.
        scale: bool. Learn a scale ``gamma``. Defaults to True.
        **kwargs: passed to ``keras.layers.Layer``.

    Masking: ``padding_mask`` (B, T) bool, True = real frame, selects the frames whose positions enter the batch
    statistics; all frames (pads included) are normalised. ``padding_mask=None`` gives ordinary (unmasked)
    BatchNorm over all positions. Inputs are (B, T, C) or (B, T, W, C).

    Example:
    >>> bn = MaskedBatchNormalization(momentum=0.05)
    >>> y = bn(np.ones((2, 5, 8), "float32"), padding_mask=np.array([[1, 1, 1, 0, 0]] * 2, bool), training=True)
    """

    def __init__(self, momentum=0.9, epsilon=1e-5, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.supports_masking = False

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        channels = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones", trainable=True) \
            if self.scale else None
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros", trainable=True) \
            if self.center else None
        self.moving_mean = self.add_weight(name="moving_mean", shape=(channels,), initializer="zeros",
                                           trainable=False, autocast=False, aggregation="mean")
        self.moving_variance = self.add_weight(name="moving_variance", shape=(channels,), initializer="ones",
                                               trainable=False, autocast=False, aggregation="mean")
        self.built = True

    def _moments(self, x, padding_mask):
        """Masked mean and biased variance per channel, and the number of positions counted.

        One pass over shifted data: with a per-channel constant ``c``, ``m1 = E[x − c]`` and ``m2 = E[(x − c)²]``
        over valid positions give ``mean = c + m1`` and ``var = m2 − m1²``. ``c`` is the first frame of the first
        sequence (averaged over the other positions; 0 if that frame is padding), which is within a few standard
        deviations of the mean, so the cancellation stays small even for activations whose mean is large
        against their spread; the single pass is markedly cheaper than the two-pass form on the large stem
        activations (B, T, W, C).
        """
        rank = len(x.shape)
        axes = tuple(range(rank - 1))
        first = ops.reshape(x[0, 0], (-1, x.shape[-1]))  # (positions, C) of frame (0, 0)
        shift = ops.mean(first, axis=0)
        if padding_mask is not None:
            shift = ops.where(padding_mask[0, 0], shift, ops.zeros_like(shift))
        # data-parallel TensorFlow: one shift and global sums over the replicas (aslfs.training.distribution)
        shift = ops.stop_gradient(distribution.all_reduce(shift) / float(distribution.num_replicas()))
        shifted = x - shift
        count = 1.0
        if padding_mask is None:
            for size in ops.shape(x)[:-1]:
                count = count * ops.cast(size, "float32")
        else:
            keep = ops.reshape(padding_mask, ops.shape(padding_mask) + (1,) * (rank - 2))  # (B, T, 1[, 1])
            for size in ops.shape(x)[2:-1]:
                count = count * ops.cast(size, "float32")
            count = count * ops.sum(ops.cast(padding_mask, "float32"))
            # where, not a multiply: garbage (NaN, inf) at pads must not reach the sums
            shifted = ops.where(keep, shifted, ops.zeros_like(shifted))
        count = distribution.all_reduce(count)
        denom = ops.maximum(count, 1.0)
        m1 = distribution.all_reduce(ops.sum(shifted, axis=axes)) / denom
        m2 = distribution.all_reduce(ops.sum(ops.square(shifted), axis=axes)) / denom
        variance = ops.maximum(m2 - ops.square(m1), 0.0)
        return shift + m1, variance, count

    def call(self, inputs, padding_mask=None, training=None):
        x = ops.cast(inputs, "float32")
        if training:
            mean, variance, count = self._moments(x, padding_mask)
            unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
            self.moving_mean.assign(self.momentum * self.moving_mean + (1.0 - self.momentum) * mean)
            self.moving_variance.assign(self.momentum * self.moving_variance + (1.0 - self.momentum) * unbiased)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        inv = ops.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * ops.cast(self.gamma, "float32")
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + ops.cast(self.beta, "float32")
        return ops.cast(x * inv + shift, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }
