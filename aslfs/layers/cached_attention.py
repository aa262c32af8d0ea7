"""Multi-head attention with biases and an explicit key/value cache (cache in, cache out)."""

from __future__ import annotations

import math

import keras
from keras import ops

from aslfs.layers.masking import masked_softmax


@keras.saving.register_keras_serializable(package="aslfs")
class CachedAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention whose decoding state is an explicit input.

    The layout follows HF/fairseq attention: separate ``query``, ``key``, ``value`` and ``output`` projections
    (``Dense`` with bias, so a PyTorch ``Linear`` maps onto each by transposing its weight), the query is scaled by
    ``head_dim ** -0.5`` after projection, softmax over the keys, dropout on the probabilities, output projection.
    ``head_dim = hidden_dim // num_heads``. Used by the decoder for both causal self-attention (with a growing
    cache) and cross-attention (with a cache computed once from the encoder output).

    Args:
        hidden_dim: int. Width of the query input and of the output; the key/value input has the same width.
        num_heads: int. Number of heads; must divide ``hidden_dim``.
        dropout: float. Dropout rate on the attention probabilities (training only). Defaults to ``0.0``.
        kernel_initializer: initializer for the four projection kernels. Defaults to ``N(0, 0.02)``.
        bias_initializer: initializer for the four projection biases. Defaults to ``"zeros"``.
        **kwargs: other keyword arguments of ``keras.layers.Layer`` (``name``, ``dtype``, ...).

    Call arguments:
        query: float tensor ``(B, Lq, hidden_dim)``.
        key_value: float tensor ``(B, Lk, hidden_dim)`` or ``None``. The keys/values input; ``None`` means
            self-attention (``key_value = query``). Ignored when ``cache`` is given without ``cache_update_index``.
        attention_mask: bool tensor ``(B, Lq, Lk)`` (or broadcastable to it), ``True`` = the query may attend to
            that key; ``None`` = attend everywhere. With a self-attention cache, ``Lk`` is the cache length ``S``.
            The softmax runs in float32 (``aslfs.layers.masking.masked_softmax``).
        cache: ``(key, value)`` tuple of float tensors ``(B, num_heads, S, head_dim)``, or ``None``. With
            ``cache_update_index`` it is a self-attention cache: the keys/values of ``query`` (``Lq`` steps) are
            written at ``[cache_update_index, cache_update_index + Lq)`` and the query attends over the whole updated
            cache (mask the unwritten slots with ``attention_mask``). Without ``cache_update_index`` it is a fixed
            cache (e.g. from ``compute_key_value``) that is used as is.
        cache_update_index: int or scalar int tensor, the write position in a self-attention cache.
        training: bool. Enables the probability dropout.

    Returns:
        ``output`` ``(B, Lq, hidden_dim)`` when ``cache`` is ``None``, else the tuple ``(output, cache)`` with the
        updated (or unchanged) ``(key, value)`` cache.

    Cache layout:
        Heads-major ``(B, heads, length, head_dim)``, keys and values as two tensors: both attention products are
        then plain batched matmuls (TFLite ``BATCH_MATMUL``, ``adj_y`` for the keys) with no per-step transpose or
        slice of the cache, which matters in a decode loop whose cross-attention cache holds up to 384 frames.

    Masking:
        There is no implicit Keras masking; pass masks explicitly as ``attention_mask`` (polarity ``True`` = may
        attend); masked scores are filled with the float32 minimum, so a fully masked query row attends uniformly to
        every key instead of producing NaN.

    Example:
        >>> attention = CachedAttention(hidden_dim=32, num_heads=4)
        >>> x = np.random.rand(2, 5, 32).astype("float32")
        >>> y = attention(x)  # (2, 5, 32)
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        dropout=0.0,
        kernel_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        hidden_dim = int(hidden_dim)
        num_heads = int(num_heads)
        if hidden_dim % num_heads:
            raise ValueError(f"CachedAttention: hidden_dim {hidden_dim} is not divisible by num_heads {num_heads}")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.head_dim = hidden_dim // num_heads
        self.dropout = float(dropout)
        if kernel_initializer is None:
            kernel_initializer = keras.initializers.RandomNormal(stddev=0.02)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

        def dense(name):
            return keras.layers.Dense(
                hidden_dim,
                kernel_initializer=keras.initializers.get(keras.initializers.serialize(self.kernel_initializer)),
                bias_initializer=keras.initializers.get(keras.initializers.serialize(self.bias_initializer)),
                dtype=self.dtype_policy,
                name=name,
            )

        self.query_dense = dense("query")
        self.key_dense = dense("key")
        self.value_dense = dense("value")
        self.output_dense = dense("output")
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="attention_dropout")

    def build(self, query_shape, key_value_shape=None):
        query_shape = tuple(query_shape)
        shape = query_shape[:-1] + (self.hidden_dim,)
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            layer.build(shape)
        self.built = True

    def _split_heads(self, x):
        """``(B, L, hidden_dim)`` -> heads-major ``(B, heads, L, head_dim)``."""
        shape = ops.shape(x)
        x = ops.reshape(x, (shape[0], shape[1], self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def compute_key_value(self, key_value):
        """Keys and values of ``key_value`` ``(B, Lk, hidden_dim)`` as a fixed ``(key, value)`` cache.

        Returns:
            tuple of two float tensors ``(B, heads, Lk, head_dim)``.
        """
        if not self.built:
            self.build((None, None, self.hidden_dim))
        return self._split_heads(self.key_dense(key_value)), self._split_heads(self.value_dense(key_value))

    def call(
        self,
        query,
        key_value=None,
        attention_mask=None,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        q = self._split_heads(self.query_dense(query))
        q = q * ops.cast(1.0 / math.sqrt(self.head_dim), q.dtype)
        if cache is not None and cache_update_index is None:
            key, value = cache
        else:
            source = query if key_value is None else key_value
            key = self._split_heads(self.key_dense(source))
            value = self._split_heads(self.value_dense(source))
            if cache is not None:
                key_cache, value_cache = cache
                start = (0, 0, cache_update_index, 0)
                key = ops.slice_update(key_cache, start, ops.cast(key, key_cache.dtype))
                value = ops.slice_update(value_cache, start, ops.cast(value, value_cache.dtype))
                cache = (key, value)
        scores = ops.einsum("bhqd,bhkd->bhqk", q, ops.cast(key, q.dtype))  # (B, heads, Lq, Lk)
        if scores.shape[-1] == 1:
            probs = ops.ones_like(scores)  # softmax over a single key (masked or not) is exactly 1
        else:
            probs = ops.cast(masked_softmax(scores, attention_mask), scores.dtype)
        probs = self.dropout_layer(probs, training=training)
        context = ops.einsum("bhqk,bhkd->bhqd", probs, ops.cast(value, probs.dtype))
        context = ops.transpose(context, (0, 2, 1, 3))  # (B, Lq, heads, head_dim)
        shape = ops.shape(context)
        output = self.output_dense(ops.reshape(context, (shape[0], shape[1], self.hidden_dim)))
        if cache is not None:
            return output, cache
        return output

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
