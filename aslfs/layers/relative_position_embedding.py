"""Fixed sinusoidal table of relative offsets for Transformer-XL style attention."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="aslfs")
class RelativePositionEmbedding(keras.layers.Layer):
    """Sinusoidal embeddings of the relative offsets +(T−1) … −(T−1) (docs/reference.md §4.3). No weights.

    Row k holds offset r = T − 1 − k; its entries interleave sin(r·ω_i) (even columns) and cos(r·ω_i) (odd columns),
    with ω_i = 10000^(−2i/D). The table depends only on T, so the encoder computes it once per call and passes it to
    every block (each block has its own position projection).

    Args:
        hidden_dim: int. Embedding width D (even).
        **kwargs: passed to ``keras.layers.Layer``.

    Call arguments:
        inputs: (B, T, ...) tensor; only its length T is read.

    Returns:
        (2T − 1, D) in the layer's compute dtype.
    """

    def __init__(self, hidden_dim, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % 2:
            raise ValueError(f"RelativePositionEmbedding: hidden_dim must be even, got {hidden_dim}")
        self.hidden_dim = hidden_dim
        self.built = True

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        offsets = ops.cast(ops.arange(length - 1, -length, -1), "float32")  # (2T-1,)
        omega = np.exp(np.arange(0, self.hidden_dim, 2, dtype=np.float32) * -(math.log(10000.0) / self.hidden_dim))
        angles = offsets[:, None] * ops.convert_to_tensor(omega.astype(np.float32))[None, :]  # (2T-1, D/2)
        table = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)  # interleave: sin, cos, sin, cos, ...
        table = ops.reshape(table, (-1, self.hidden_dim))
        return ops.cast(table, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        length = input_shape[1]
        return (None if length is None else 2 * length - 1, self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim}
