"""Squeezeformer feed-forward module."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="aslfs")
class FeedForward(keras.layers.Layer):
    """Dense(D → e·D) → Swish → Dropout → Dense(e·D → D) → Dropout (docs/reference.md §4.6).

    Args:
        hidden_dim: int. Input and output width D.
        expansion: int. Inner width factor e (1 in the reference). Defaults to 1.
        dropout: float. Dropout after the activation and on the output. Defaults to 0.1.
        **kwargs: passed to ``keras.layers.Layer``.

    Masking: acts on each frame independently, so outputs at real frames never depend on pads; pad frames are not
    zeroed here.

    Call arguments:
        inputs: (B, T, D).
        training: bool.

    Returns:
        (B, T, D).
    """

    def __init__(self, hidden_dim, expansion=1, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.expansion = expansion
        self.dropout = dropout
        self.inner_dense = keras.layers.Dense(hidden_dim * expansion, name="inner_dense", dtype=self.dtype_policy)
        self.output_dense = keras.layers.Dense(hidden_dim, name="output_dense", dtype=self.dtype_policy)
        self.inner_dropout = keras.layers.Dropout(dropout, name="inner_dropout", dtype=self.dtype_policy)
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout", dtype=self.dtype_policy)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.inner_dense.build(input_shape)
        self.output_dense.build(input_shape[:-1] + (self.hidden_dim * self.expansion,))
        self.built = True

    def call(self, inputs, training=None):
        x = ops.silu(self.inner_dense(inputs))
        x = self.inner_dropout(x, training=training)
        x = self.output_dense(x)
        return self.output_dropout(x, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.hidden_dim,)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "expansion": self.expansion,
                "dropout": self.dropout}
