"""One pre-LN Transformer decoder block (Speech2Text style) with explicit self-attention cache."""

from __future__ import annotations

import keras

from aslfs.layers.cached_attention import CachedAttention


@keras.saving.register_keras_serializable(package="aslfs")
class DecoderBlock(keras.layers.Layer):
    """Pre-LN decoder layer: causal self-attention, cross-attention, ReLU feed-forward, each with a residual.

    ``x = x + drop(self_attn(LN(x)))``; ``x = x + drop(cross_attn(LN(x), encoder_output))``;
    ``x = x + drop(fc2(act_drop(relu(fc1(LN(x))))))`` (HF ``Speech2TextDecoderLayer``, docs/reference.md §4.8).

    Args:
        hidden_dim: int. Model width ``D``.
        num_heads: int. Attention heads of both attentions.
        intermediate_dim: int. Width of the feed-forward hidden layer.
        dropout: float. Dropout after each sub-block (before the residual add). Defaults to ``0.1``.
        attention_dropout: float. Dropout on the attention probabilities. Defaults to ``0.2``.
        activation_dropout: float. Dropout after the ReLU. Defaults to ``0.1``.
        layer_norm_epsilon: float. LayerNorm epsilon. Defaults to ``1e-5`` (PyTorch's default).
        kernel_initializer: initializer of every ``Dense`` kernel. Defaults to ``N(0, 0.02)``.
        **kwargs: other ``keras.layers.Layer`` arguments.

    Call arguments:
        hidden_states: float ``(B, L, D)``.
        encoder_output: float ``(B, T, D)``; not needed when ``cross_cache`` is given.
        self_attention_mask: bool ``(B, L, L)`` (or ``(B, L, S)`` with a cache), ``True`` = may attend.
        cross_attention_mask: bool ``(B, L, T)``, ``True`` = may attend (the encoder key-padding mask).
        self_cache: ``(key, value)``, each float ``(B, heads, S, head_dim)``, or ``None``; needs
            ``cache_update_index``.
        cache_update_index: int or scalar int tensor, where this call's keys/values are written in ``self_cache``.
        cross_cache: ``(key, value)``, each ``(B, heads, T, head_dim)``, from ``cross_attention.compute_key_value``,
            or ``None``.
        training: bool.

    Returns:
        ``(B, L, D)``, or ``(output, new_self_cache)`` when ``self_cache`` is given.
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        attention_dropout=0.2,
        activation_dropout=0.1,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.activation_dropout = float(activation_dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        if kernel_initializer is None:
            kernel_initializer = keras.initializers.RandomNormal(stddev=0.02)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        def init():
            return keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))

        def norm(name):
            return keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
            )

        def attention(name):
            return CachedAttention(
                self.hidden_dim,
                self.num_heads,
                dropout=self.attention_dropout,
                kernel_initializer=init(),
                dtype=self.dtype_policy,
                name=name,
            )

        self.self_attention_norm = norm("self_attention_norm")
        self.self_attention = attention("self_attention")
        self.cross_attention_norm = norm("cross_attention_norm")
        self.cross_attention = attention("cross_attention")
        self.feedforward_norm = norm("feedforward_norm")
        self.fc1 = keras.layers.Dense(
            self.intermediate_dim, activation="relu", kernel_initializer=init(), dtype=self.dtype_policy, name="fc1"
        )
        self.fc2 = keras.layers.Dense(self.hidden_dim, kernel_initializer=init(), dtype=self.dtype_policy, name="fc2")
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="dropout")
        self.activation_dropout_layer = keras.layers.Dropout(
            self.activation_dropout, dtype=self.dtype_policy, name="activation_dropout"
        )

    def build(self, hidden_states_shape, encoder_output_shape=None):
        hidden_states_shape = tuple(hidden_states_shape)
        shape = hidden_states_shape[:-1] + (self.hidden_dim,)
        for norm in (self.self_attention_norm, self.cross_attention_norm, self.feedforward_norm):
            norm.build(shape)
        self.self_attention.build(shape)
        self.cross_attention.build(shape)
        self.fc1.build(shape)
        self.fc2.build(shape[:-1] + (self.intermediate_dim,))
        self.built = True

    def call(
        self,
        hidden_states,
        encoder_output=None,
        self_attention_mask=None,
        cross_attention_mask=None,
        self_cache=None,
        cache_update_index=None,
        cross_cache=None,
        training=None,
    ):
        x = hidden_states
        h = self.self_attention_norm(x)
        if self_cache is not None:
            h, self_cache = self.self_attention(
                h,
                attention_mask=self_attention_mask,
                cache=self_cache,
                cache_update_index=cache_update_index,
                training=training,
            )
        else:
            h = self.self_attention(h, attention_mask=self_attention_mask, training=training)
        x = x + self.dropout_layer(h, training=training)

        h = self.cross_attention_norm(x)
        if cross_cache is not None:
            h, _ = self.cross_attention(h, attention_mask=cross_attention_mask, cache=cross_cache, training=training)
        else:
            h = self.cross_attention(
                h, key_value=encoder_output, attention_mask=cross_attention_mask, training=training
            )
        x = x + self.dropout_layer(h, training=training)

        h = self.feedforward_norm(x)
        h = self.activation_dropout_layer(self.fc1(h), training=training)
        h = self.fc2(h)
        x = x + self.dropout_layer(h, training=training)
        if self_cache is not None:
            return x, self_cache
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation_dropout": self.activation_dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
