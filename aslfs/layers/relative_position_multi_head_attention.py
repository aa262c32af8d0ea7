"""Transformer-XL style relative-position multi-head self-attention (round 1)."""

from __future__ import annotations

import math

import keras
from keras import ops

from aslfs.layers.attention_ops import attend



def relative_shift(scores):
    """Transformer-XL relative shift with static-shape ops (pad, reshape, slice; no gather).

    Args:
        scores: (B, H, T, 2T − 1); column k of row i belongs to offset T − 1 − k.

    Returns:
        (B, H, T, T) with ``out[..., i, j] = scores[..., i, T − 1 − i + j]``: entry (i, j) uses offset i − j.
    """
    shape = ops.shape(scores)
    batch, heads, length = shape[0], shape[1], shape[2]
    x = ops.pad(scores, ((0, 0), (0, 0), (0, 0), (1, 0)))  # (B, H, T, 2T)
    x = ops.reshape(x, (batch, heads, -1, length))  # (B, H, 2T, T)
    x = x[:, :, 1:]  # (B, H, 2T - 1, T)
    x = ops.reshape(x, (batch, heads, length, -1))  # (B, H, T, 2T - 1)
    return x[..., :length] if isinstance(length, int) else ops.slice(
        x, (0, 0, 0, 0), (batch, heads, length, length))


@keras.saving.register_keras_serializable(package="aslfs")
class RelativePositionMultiHeadAttention(keras.layers.Layer):
    """Multi-head self-attention with relative sinusoidal positions and u/v biases (docs/reference.md §4.3).

    content(i, j) = (q_i + u)·k_j, position(i, j) = (q_i + v)·P(i − j), with P = Dense(no bias)(sinusoidal table)
    brought to (i, j) by the relative shift; score = (content + position)/√d_h; softmax; dropout on the
    probabilities; ·V; output Dense; dropout on the output.

    Args:
        hidden_dim: int. Model width D.
        num_heads: int. Heads H (d_h = D / H).
        dropout: float. Dropout on the attention probabilities and on the module output. Defaults to 0.1.
        **kwargs: passed to ``keras.layers.Layer``.

    Masking: ``attention_mask`` bool (B, Lq, Lk) or (B, 1, Lk), True = may attend (see ``aslfs.layers.masking``);
    masked scores are filled with the float32 minimum before a float32 softmax.

    Call arguments:
        inputs: (B, T, D).
        position_embedding: (2T − 1, D) from ``RelativePositionEmbedding``.
        attention_mask: optional bool mask as above.
        attention_bias: optional float32 additive mask (B, 1, 1, Lk) from ``aslfs.layers.masking.attention_bias``
            (0 = attend, dtype minimum = masked); used instead of ``attention_mask`` when given (faster).
        training: bool.

    Returns:
        (B, T, D).
    """

    def __init__(self, hidden_dim, num_heads, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim {hidden_dim} is not divisible by num_heads {num_heads}")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.head_dim = hidden_dim // num_heads

        # Plain Dense layers on (B, T, D) (one 2-D matmul each); heads are split by a reshape.
        self.query_dense = keras.layers.Dense(hidden_dim, name="query", dtype=self.dtype_policy)
        self.key_dense = keras.layers.Dense(hidden_dim, name="key", dtype=self.dtype_policy)
        self.value_dense = keras.layers.Dense(hidden_dim, name="value", dtype=self.dtype_policy)
        self.position_dense = keras.layers.Dense(hidden_dim, use_bias=False, name="position", dtype=self.dtype_policy)
        self.output_dense = keras.layers.Dense(hidden_dim, name="attention_output", dtype=self.dtype_policy)
        self.probs_dropout = keras.layers.Dropout(dropout, name="probs_dropout", dtype=self.dtype_policy)
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout", dtype=self.dtype_policy)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            layer.build(input_shape)
        self.position_dense.build((None, self.hidden_dim))
        self.pos_bias_u = self.add_weight(name="pos_bias_u", shape=(self.num_heads, self.head_dim),
                                          initializer="glorot_uniform")
        self.pos_bias_v = self.add_weight(name="pos_bias_v", shape=(self.num_heads, self.head_dim),
                                          initializer="glorot_uniform")
        self.built = True

    def _heads(self, x):
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1], self.num_heads, self.head_dim))

    def call(self, inputs, position_embedding, attention_mask=None, attention_bias=None, training=None):
        query = self._heads(self.query_dense(inputs))  # (B, T, H, d)
        key = self._heads(self.key_dense(inputs))
        value = self._heads(self.value_dense(inputs))
        position = ops.reshape(self.position_dense(position_embedding), (-1, self.num_heads, self.head_dim))
        scale = 1.0 / math.sqrt(self.head_dim)  # applied to the (small) queries, not to the (B, H, T, T) scores
        u = ops.cast(self.pos_bias_u, query.dtype)
        v = ops.cast(self.pos_bias_v, query.dtype)
        content = ops.einsum("bqhd,bkhd->bhqk", (query + u) * scale, key)
        positional = relative_shift(ops.einsum("bqhd,phd->bhqp", (query + v) * scale, position))
        context = attend(content + positional, value, attention_mask, attention_bias, self.probs_dropout, training)
        shape = ops.shape(context)
        output = self.output_dense(ops.reshape(context, (shape[0], shape[1], self.hidden_dim)))
        return self.output_dropout(output, training=training)

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)[:-1] + (self.hidden_dim,)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "dropout": self.dropout}
