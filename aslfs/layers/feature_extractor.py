"""Landmark feature extractor: a Conv2D stem over (time, landmarks, xyz), then a per-frame projection."""

from __future__ import annotations

import keras
from keras import ops

from aslfs.layers.masked_batch_normalization import MaskedBatchNormalization
from aslfs.layers.masking import apply_padding_mask


@keras.saving.register_keras_serializable(package="aslfs")
class FeatureExtractor(keras.layers.Layer):
    """Per-frame features from a group of landmarks (docs/reference.md §4.1).

    The input (B, T, n, 3) is an image of height T, width n and 3 channels (x, y, z):

    1. zero the pad frames (garbage must not leak: the 3×3 kernel reads neighbouring frames);
    2. Conv2D(3 → ``stem_channels``, 3×3, stride (1, 2), zero padding 1 on both sides, no bias) → (B, T, W, C) with
       W = ⌈n / 2⌉ (explicit symmetric padding, as PyTorch ``padding=1``: Keras 'same' would pad only on the right);
    3. BatchNorm2d (eps 1e-5, Keras momentum 0.9) and SiLU;
    4. flatten to (B, T, W·C), landmark-major, channel-minor (PyTorch's order);
    5. Dense(W·C → ``output_dim``, no bias);
    6. BatchNorm1d (eps 1e-5, Keras momentum 0.05) with statistics over valid frames only;
    7. zero the pad frames.

    Args:
        output_dim: int. Output width D_out.
        stem_channels: int. Conv2D channels. Defaults to 32.
        mask_stem_batchnorm: bool. Statistics of the stem BatchNorm2d over valid frames only (default True).
            False reproduces the reference, whose stem BN2d counts pad frames in its training-mode batch
            statistics (so training-mode outputs then depend on the padding length; inference does not).
        epsilon: float. BatchNorm epsilon. Defaults to 1e-5.
        stem_momentum: float. Keras momentum of the stem BatchNorm2d. Defaults to 0.9.
        feature_momentum: float. Keras momentum of the BatchNorm1d. Defaults to 0.05.
        **kwargs: passed to ``keras.layers.Layer``.

    Masking: ``padding_mask`` (B, T) bool, True = real frame. Outputs at pad frames are exactly 0, and outputs at
    real frames never depend on the pads' content or number.

    Call arguments:
        inputs: float (B, T, n, 3).
        padding_mask: optional bool (B, T).
        training: bool.

    Returns:
        (B, T, output_dim).
    """

    def __init__(self, output_dim, stem_channels=32, mask_stem_batchnorm=True, epsilon=1e-5, stem_momentum=0.9,
                 feature_momentum=0.05, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = output_dim
        self.stem_channels = stem_channels
        self.mask_stem_batchnorm = mask_stem_batchnorm
        self.epsilon = epsilon
        self.stem_momentum = stem_momentum
        self.feature_momentum = feature_momentum
        self.stem_conv = keras.layers.Conv2D(stem_channels, (3, 3), strides=(1, 2), padding="valid", use_bias=False,
                                             name="stem_conv", dtype=self.dtype_policy)
        self.stem_norm = MaskedBatchNormalization(momentum=stem_momentum, epsilon=epsilon, name="stem_norm",
                                                  dtype=self.dtype_policy)
        self.projection = keras.layers.Dense(output_dim, use_bias=False, name="projection", dtype=self.dtype_policy)
        self.feature_norm = MaskedBatchNormalization(momentum=feature_momentum, epsilon=epsilon, name="feature_norm",
                                                     dtype=self.dtype_policy)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        batch, time, landmarks, channels = input_shape
        self.stem_conv.build((batch, None if time is None else time + 2, landmarks + 2, channels))
        width = (landmarks - 1) // 2 + 1
        self.stem_norm.build((batch, time, width, self.stem_channels))
        self.projection.build((batch, time, width * self.stem_channels))
        self.feature_norm.build((batch, time, self.output_dim))
        self.built = True

    def call(self, inputs, padding_mask=None, training=None):
        x = apply_padding_mask(ops.cast(inputs, self.compute_dtype), padding_mask)
        x = ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        x = self.stem_conv(x)  # (B, T, W, C)
        stem_mask = padding_mask if self.mask_stem_batchnorm else None
        x = ops.silu(self.stem_norm(x, padding_mask=stem_mask, training=training))
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1], x.shape[2] * x.shape[3]))
        x = self.projection(x)
        x = self.feature_norm(x, padding_mask=padding_mask, training=training)
        return apply_padding_mask(x, padding_mask)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.output_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "output_dim": self.output_dim,
            "stem_channels": self.stem_channels,
            "mask_stem_batchnorm": self.mask_stem_batchnorm,
            "epsilon": self.epsilon,
            "stem_momentum": self.stem_momentum,
            "feature_momentum": self.feature_momentum,
        }
