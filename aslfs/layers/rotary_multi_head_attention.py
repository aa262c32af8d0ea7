"""LLaMA-style multi-head self-attention with rotary position embeddings (round 2)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from aslfs.layers.attention_ops import attend



def apply_rotary(x, cos, sin):
    """Rotate-half RoPE: ``x·cos + rot(x)·sin`` with ``rot([a | b]) = [−b | a]`` over the two halves of the head.

    ``rot`` is computed as a swap of the halves (a reshape to (·, 2, d/2) and a flip, whose gradient is a flip too)
    times the sign pattern [−1 … −1 | +1 … +1] folded into ``sin``: cheaper than slicing and concatenating, whose
    gradients materialise zero-padded copies.

    Args:
        x: (B, T, H, d).
        cos, sin: (T, d).

    Returns:
        (B, T, H, d).
    """
    shape = ops.shape(x)
    head_dim = x.shape[-1]
    half = head_dim // 2
    swapped = ops.reshape(ops.flip(ops.reshape(x, (-1, 2, half)), axis=1), shape)  # [b | a]
    sign = ops.convert_to_tensor(np.concatenate([-np.ones(half), np.ones(half)]).astype(np.float32))
    signed_sin = sin * ops.cast(sign, sin.dtype)
    return x * cos[:, None, :] + swapped * signed_sin[:, None, :]


@keras.saving.register_keras_serializable(package="aslfs")
class RotaryMultiHeadAttention(keras.layers.Layer):
    """Self-attention with RoPE on queries and keys; q, k, v, o projections without bias (docs/reference.md §4.4).

    score = RoPE(q)·RoPE(k)ᵀ/√d_h, masked with the float32 minimum, softmax in float32. The reference has no
    attention dropout in round 2; ``dropout`` (on the probabilities and the output) defaults to 0.

    Args:
        hidden_dim: int. Model width D.
        num_heads: int. Heads H (d_h = D / H, even).
        dropout: float. Dropout on the attention probabilities and on the output. Defaults to 0.
        **kwargs: passed to ``keras.layers.Layer``.

    Masking: ``attention_mask`` bool (B, Lq, Lk) or (B, 1, Lk), True = may attend (see ``aslfs.layers.masking``).

    Call arguments:
        inputs: (B, T, D).
        position_embedding: (2, T, d_h) ``[cos, sin]`` from ``RotaryEmbedding`` (shared by all blocks).
        attention_mask: optional bool mask as above.
        attention_bias: optional float32 additive mask (B, 1, 1, Lk) from ``aslfs.layers.masking.attention_bias``
            (0 = attend, dtype minimum = masked); used instead of ``attention_mask`` when given (faster).
        training: bool.

    Returns:
        (B, T, D).
    """

    def __init__(self, hidden_dim, num_heads, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads or (hidden_dim // num_heads) % 2:
            raise ValueError(f"hidden_dim {hidden_dim} / num_heads {num_heads} must give an even head size")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.head_dim = hidden_dim // num_heads

        def dense(name, units):
            # A plain Dense on (B, T, D) (one 2-D matmul, and one for its kernel gradient); an EinsumDense with a
            # (D, H, d) kernel runs as a broadcast batch matmul whose kernel gradient is B matmuls plus a sum.
            return keras.layers.Dense(units, use_bias=False, name=name, dtype=self.dtype_policy)

        self.query_dense = dense("query", hidden_dim)
        self.key_dense = dense("key", hidden_dim)
        self.value_dense = dense("value", hidden_dim)
        self.output_dense = dense("attention_output", hidden_dim)
        self.probs_dropout = keras.layers.Dropout(dropout, name="probs_dropout", dtype=self.dtype_policy)
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout", dtype=self.dtype_policy)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            layer.build(input_shape)
        self.built = True

    def _heads(self, x):
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1], self.num_heads, self.head_dim))

    def call(self, inputs, position_embedding, attention_mask=None, attention_bias=None, training=None):
        cos, sin = position_embedding[0], position_embedding[1]
        scale = ops.cast(1.0 / math.sqrt(self.head_dim), self.compute_dtype)
        query = apply_rotary(self._heads(self.query_dense(inputs) * scale), cos, sin)  # (B, T, H, d), pre-scaled
        key = apply_rotary(self._heads(self.key_dense(inputs)), cos, sin)
        value = self._heads(self.value_dense(inputs))
        scores = ops.einsum("bqhd,bkhd->bhqk", query, key)
        context = attend(scores, value, attention_mask, attention_bias, self.probs_dropout, training)
        shape = ops.shape(context)
        output = self.output_dense(ops.reshape(context, (shape[0], shape[1], self.hidden_dim)))
        if self.dropout:
            output = self.output_dropout(output, training=training)
        return output

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)[:-1] + (self.hidden_dim,)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "dropout": self.dropout}
