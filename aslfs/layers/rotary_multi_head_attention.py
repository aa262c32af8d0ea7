"""LLaMA-style multi-head self-attention with rotary position embeddings (round 2)."""

from __future__ import annotations

import math

import keras
from keras import ops

from aslfs.layers.masking import masked_softmax


def apply_rotary(x, cos, sin):
    """Rotate-half RoPE: ``x·cos + rot(x)·sin`` with ``rot([a | b]) = [−b | a]`` over the two halves of the head.

    Args:
        x: (B, T, H, d).
        cos, sin: (T, d).

    Returns:
        (B, T, H, d).
    """
    half = x.shape[-1] // 2
    rotated = ops.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos[:, None, :] + rotated * sin[:, None, :]


@keras.saving.register_keras_serializable(package="aslfs")
class RotaryMultiHeadAttention(keras.layers.Layer):
    """Self-attention with RoPE on queries and keys; q, k, v, o projections without bias (reference-spec §4.4).

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

        def dense(name):
            return keras.layers.EinsumDense("btd,dhk->bthk", output_shape=(None, num_heads, self.head_dim),
                                            name=name, dtype=self.dtype_policy)

        self.query_dense = dense("query")
        self.key_dense = dense("key")
        self.value_dense = dense("value")
        self.output_dense = keras.layers.EinsumDense("bthk,hkd->btd", output_shape=(None, hidden_dim),
                                                     name="attention_output", dtype=self.dtype_policy)
        self.probs_dropout = keras.layers.Dropout(dropout, name="probs_dropout", dtype=self.dtype_policy)
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout", dtype=self.dtype_policy)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        for layer in (self.query_dense, self.key_dense, self.value_dense):
            layer.build(input_shape)
        self.output_dense.build(input_shape[:2] + (self.num_heads, self.head_dim))
        self.built = True

    def call(self, inputs, position_embedding, attention_mask=None, training=None):
        cos, sin = position_embedding[0], position_embedding[1]
        query = apply_rotary(self.query_dense(inputs), cos, sin)  # (B, T, H, d)
        key = apply_rotary(self.key_dense(inputs), cos, sin)
        value = self.value_dense(inputs)
        scores = ops.einsum("bqhd,bkhd->bhqk", query, key) * (1.0 / math.sqrt(self.head_dim))
        probs = ops.cast(masked_softmax(scores, attention_mask), self.compute_dtype)
        if self.dropout:
            probs = self.probs_dropout(probs, training=training)
        context = ops.einsum("bhqk,bkhd->bqhd", probs, value)
        output = self.output_dense(context)
        if self.dropout:
            output = self.output_dropout(output, training=training)
        return output

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)[:-1] + (self.hidden_dim,)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "num_heads": self.num_heads,
                "dropout": self.dropout}
