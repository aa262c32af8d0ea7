"""Rotary position table (cos, sin) shared by every encoder block."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def rotary_table(max_len: int, head_dim: int) -> np.ndarray:
    """float32 (2, max_len, head_dim): [cos; sin] of t·inv_freq, the head_dim/2 angles repeated in two halves.

    inv_freq_i = 10000^(−2i/head_dim), t = 0 … max_len − 1, computed in float32 as the reference does
    (docs/reference.md §4.4).
    """
    inv_freq = (1.0 / (10000.0 ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)))).astype(
        np.float32)
    t = np.arange(max_len, dtype=np.float32)
    freqs = np.outer(t, inv_freq).astype(np.float32)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.stack([np.cos(emb), np.sin(emb)]).astype(np.float32)


@keras.saving.register_keras_serializable(package="aslfs")
class RotaryEmbedding(keras.layers.Layer):
    """The rotary cos/sin table, computed once (as a constant, not a weight) and sliced to the input length.

    The round-2 model computes it once per forward pass and hands it to every block (docs/reference.md §4.4: −20 %
    parameters and faster than per-layer relative encodings). Positions are frame indices 0 … T − 1, so the model
    supports T ≤ ``max_len``.

    Args:
        head_dim: int. Attention head size (even).
        max_len: int. Table length. Defaults to 384.
        **kwargs: passed to ``keras.layers.Layer``.

    Call arguments:
        inputs: (B, T, ...) tensor; only its length T is read.

    Returns:
        (2, T, head_dim): ``[cos, sin]`` in the layer's compute dtype.
    """

    def __init__(self, head_dim, max_len=384, **kwargs):
        super().__init__(**kwargs)
        if head_dim % 2:
            raise ValueError(f"RotaryEmbedding: head_dim must be even, got {head_dim}")
        self.head_dim = head_dim
        self.max_len = max_len
        self._table = rotary_table(max_len, head_dim)
        self.built = True

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        table = ops.convert_to_tensor(self._table)
        table = ops.slice(table, (0, 0, 0), (2, length, self.head_dim))
        return ops.cast(table, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (2, input_shape[1], self.head_dim)

    def get_config(self):
        return {**super().get_config(), "head_dim": self.head_dim, "max_len": self.max_len}
