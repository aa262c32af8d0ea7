"""The Speech2Text-style Transformer decoder of the reference (docs/reference.md §4.8), with a cached single-step API."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from aslfs.layers.decoder_block import DecoderBlock
from aslfs.layers.masking import apply_padding_mask, attention_mask_from_padding, causal_attention_mask
from aslfs.vocab import PAD_ID, VOCAB_SIZE

POSITION_OFFSET = 2  # HF Speech2Text keeps max_target_positions + 2 rows in its sinusoidal table


def sinusoidal_position_table(num_positions: int, dim: int, pad_id: int = PAD_ID) -> np.ndarray:
    """The fixed position table of HF ``Speech2TextSinusoidalPositionalEmbedding`` as float32 ``(num_positions, dim)``.

    Row ``p`` is ``[sin(p * w_0), ..., sin(p * w_{h-1}), cos(p * w_0), ..., cos(p * w_{h-1})]`` with ``h = dim // 2``
    and ``w_i = exp(-i * ln(10000) / (h - 1))`` (note the ``h - 1`` denominator); an odd ``dim`` gets a zero last
    column; row ``pad_id`` is all zeros.
    """
    half = dim // 2
    if half < 2:
        raise ValueError(f"sinusoidal_position_table: dim must be >= 4, got {dim}")
    freqs = np.exp(np.arange(half, dtype=np.float32) * -(math.log(10000.0) / (half - 1)))
    angles = np.arange(num_positions, dtype=np.float32)[:, None] * freqs[None, :]
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    if dim % 2:
        table = np.concatenate([table, np.zeros((num_positions, 1), np.float32)], axis=1)
    if 0 <= pad_id < num_positions:
        table[pad_id] = 0.0
    return table.astype(np.float32)


def decoder_position_ids(token_ids, pad_id: int = PAD_ID):
    """Position ids of HF ``create_position_ids_from_input_ids``: ``pad_id`` + running count of non-pad tokens.

    Args:
        token_ids: int tensor ``(B, L)``.
        pad_id: the padding id. A pad token gets position ``pad_id`` (the zero row of the table); the first non-pad
            token gets ``pad_id + 1`` (60), the next ``pad_id + 2``, and so on, pads not counted.

    Returns:
        int32 tensor ``(B, L)``.
    """
    token_ids = ops.cast(token_ids, "int32")
    not_pad = ops.cast(ops.not_equal(token_ids, pad_id), "int32")
    return ops.cumsum(not_pad, axis=1) * not_pad + pad_id


@keras.saving.register_keras_serializable(package="aslfs")
class SpeechTransformerDecoder(keras.layers.Layer):
    """Speech2Text-style Transformer decoder with its language-model head (docs/reference.md §4.8).

    ``logits = lm_head(LN(layers(dropout(sqrt(D) * embed(ids) + positions(ids)), encoder_output)))`` with
    ``num_layers`` pre-LN ``DecoderBlock``s (causal self-attention, cross-attention over the encoder output with the
    encoder key-padding mask, ReLU feed-forward). The token embedding's ``pad_id`` row is zeroed at build and the
    looked-up vectors are multiplied by ``ids != pad_id``, so the pad row stays zero and gets no gradient (PyTorch
    ``padding_idx``). The sinusoidal position table (``max_positions + 2`` rows, see ``sinusoidal_position_table``)
    is a frozen, non-trainable weight named ``position_table`` (kept as a weight so a PyTorch
    ``embed_positions.weights`` can be copied onto it). Position ids follow ``decoder_position_ids`` (60, 61, ...
    for non-pad tokens, the zero row for pads).

    Initialisation: every ``Dense``/``Embedding`` kernel ``N(0, 0.02)``, biases zero, except ``lm_head``, which uses
    PyTorch's default ``Linear`` init (``U(+-1/sqrt(D))``, i.e. ``VarianceScaling(1/3, fan_in, uniform)``) as in the
    reference. Trainable parameters: 650,464 for ``D = 144`` and 1,152,096 for ``D = 208``.

    Args:
        hidden_dim: int. Model width ``D`` (equal to the encoder width).
        num_layers: int. Number of decoder layers. Defaults to ``2``.
        num_heads: int. Attention heads. Defaults to ``4``.
        intermediate_dim: int. Feed-forward width. Defaults to ``512``.
        vocab_size: int. Output ids. Defaults to ``63``.
        dropout: float. Dropout on the embeddings and after each sub-block. Defaults to ``0.1``.
        attention_dropout: float. Dropout on the attention probabilities. Defaults to ``0.2``.
        activation_dropout: float. Dropout after the feed-forward ReLU. Defaults to ``0.1``.
        max_positions: int. ``max_target_positions``; the table has ``max_positions + 2`` rows. Defaults to ``1024``.
        pad_id: int. Padding id (zero embedding, zero position row). Defaults to ``59``.
        **kwargs: other ``keras.layers.Layer`` arguments.

    Call arguments:
        decoder_input_ids: int ``(B, L)``, the decoder input (start id 60 then the shifted target).
        encoder_output: float ``(B, T, D)``.
        encoder_padding_mask: bool ``(B, T)``, ``True`` = real frame, or ``None`` (all frames real).
        training: bool.

    Returns:
        float logits ``(B, L, vocab_size)`` of the teacher-forced causal pass.

    Masking:
        Self-attention is causal only (no decoder padding mask, as in the reference); cross-attention masks the
        encoder frames where ``encoder_padding_mask`` is ``False``. Those frames are also set to zero before the
        key/value projections (not in the reference; identical results for finite values), so garbage there, even
        NaN or inf, cannot influence the output.

    Cached decoding (greedy, one token per step; see ``aslfs.decoding.greedy_attention_decode``):
        ``cross_cache = precompute_cross_cache(encoder_output, mask)``; ``self_cache = init_self_cache(B, max_steps)``;
        then for ``k = 0, 1, ...``: ``logits, self_cache = step(ids_k, k, self_cache, cross_cache, mask,
        position_ids=...)``. The caches are lists with one ``(key, value)`` pair per layer, each a fixed-size
        tensor ``(B, heads, S, head_dim)`` (heads-major, see ``CachedAttention``); the self cache is updated with
        ``ops.slice_update`` at slot ``k`` and slots after ``k`` are masked, so every shape is static.

    Example:
        >>> decoder = SpeechTransformerDecoder(hidden_dim=144)
        >>> logits = decoder(ids, encoder_output, encoder_padding_mask)  # (B, L, 63)
    """

    def __init__(
        self,
        hidden_dim,
        num_layers=2,
        num_heads=4,
        intermediate_dim=512,
        vocab_size=VOCAB_SIZE,
        dropout=0.1,
        attention_dropout=0.2,
        activation_dropout=0.1,
        max_positions=1024,
        pad_id=PAD_ID,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = int(hidden_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.vocab_size = int(vocab_size)
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.activation_dropout = float(activation_dropout)
        self.max_positions = int(max_positions)
        self.pad_id = int(pad_id)
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                f"SpeechTransformerDecoder: hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}"
            )
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"SpeechTransformerDecoder: pad_id {self.pad_id} is outside the vocabulary")
        self.head_dim = self.hidden_dim // self.num_heads
        self.embed_scale = math.sqrt(self.hidden_dim)

        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            self.vocab_size,
            self.hidden_dim,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.embedding_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="embedding_dropout")
        self.decoder_layers = [
            DecoderBlock(
                self.hidden_dim,
                self.num_heads,
                self.intermediate_dim,
                dropout=self.dropout,
                attention_dropout=self.attention_dropout,
                activation_dropout=self.activation_dropout,
                layer_norm_epsilon=1e-5,
                dtype=self.dtype_policy,
                name=f"layer_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="final_norm")
        self.lm_head = keras.layers.Dense(
            self.vocab_size,
            use_bias=False,
            kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
            dtype=self.dtype_policy,
            name="lm_head",
        )

    def build(self, decoder_input_ids_shape=None, encoder_output_shape=None, encoder_padding_mask_shape=None):
        shape = (None, None, self.hidden_dim)
        self.token_embedding.build((None, None))
        table = np.array(self.token_embedding.embeddings.numpy())
        table[self.pad_id] = 0.0  # the PyTorch padding_idx row
        self.token_embedding.embeddings.assign(table)
        self.position_table = self.add_weight(
            shape=(self.max_positions + POSITION_OFFSET, self.hidden_dim),
            initializer="zeros",
            trainable=False,
            name="position_table",
        )
        self.position_table.assign(
            sinusoidal_position_table(self.max_positions + POSITION_OFFSET, self.hidden_dim, self.pad_id)
        )
        for layer in self.decoder_layers:
            layer.build(shape)
        self.final_norm.build(shape)
        self.lm_head.build(shape)
        self.built = True

    # --- pieces shared by the full pass and the cached step ---

    def embed(self, token_ids, position_ids, training=None):
        """``dropout(sqrt(D) * embed(ids) * (ids != pad) + table[position_ids])``: ``(B, L)`` ids -> ``(B, L, D)``."""
        token_ids = ops.cast(token_ids, "int32")
        x = self.token_embedding(token_ids)
        keep = ops.cast(ops.not_equal(token_ids, self.pad_id), x.dtype)
        x = x * ops.expand_dims(keep, -1) * ops.cast(self.embed_scale, x.dtype)
        positions = ops.take(self.position_table, ops.cast(position_ids, "int32"), axis=0)
        x = x + ops.cast(positions, x.dtype)
        return self.embedding_dropout(x, training=training)

    def call(self, decoder_input_ids, encoder_output, encoder_padding_mask=None, training=None):
        decoder_input_ids = ops.cast(decoder_input_ids, "int32")
        length = ops.shape(decoder_input_ids)[1]
        x = self.embed(decoder_input_ids, decoder_position_ids(decoder_input_ids, self.pad_id), training=training)
        self_mask = causal_attention_mask(length)
        cross_mask = None if encoder_padding_mask is None else attention_mask_from_padding(encoder_padding_mask)
        encoder_output = apply_padding_mask(encoder_output, encoder_padding_mask)
        for layer in self.decoder_layers:
            x = layer(
                x,
                encoder_output=encoder_output,
                self_attention_mask=self_mask,
                cross_attention_mask=cross_mask,
                training=training,
            )
        return self.lm_head(self.final_norm(x))

    def compute_output_shape(self, decoder_input_ids_shape, encoder_output_shape=None, encoder_padding_mask_shape=None):
        return tuple(decoder_input_ids_shape) + (self.vocab_size,)

    # --- cached decoding ---

    def precompute_cross_cache(self, encoder_output, encoder_padding_mask=None):
        """Cross-attention keys/values: ``num_layers`` pairs ``(key, value)``, each ``(B, heads, T, head_dim)``.

        ``encoder_padding_mask`` (bool ``(B, T)``, ``True`` = real frame) zeroes padded frames first, as ``call`` does.
        """
        if not self.built:
            self.build()
        encoder_output = apply_padding_mask(encoder_output, encoder_padding_mask)
        return [layer.cross_attention.compute_key_value(encoder_output) for layer in self.decoder_layers]

    def init_self_cache(self, batch_size, max_steps, dtype=None):
        """An empty self-attention cache: ``num_layers`` pairs of zeros ``(batch_size, heads, max_steps, head_dim)``."""
        dtype = dtype or self.compute_dtype
        shape = (batch_size, self.num_heads, int(max_steps), self.head_dim)
        return [(ops.zeros(shape, dtype=dtype), ops.zeros(shape, dtype=dtype)) for _ in range(self.num_layers)]

    def step(
        self,
        token_ids,
        step_index,
        self_cache,
        cross_cache,
        encoder_padding_mask=None,
        position_ids=None,
    ):
        """One cached decoding step (inference: no dropout).

        Args:
            token_ids: int ``(B, 1)``, the token fed at this step (step 0: the start id 60).
            step_index: int or scalar int tensor ``k``: this token's slot in the self cache (its 0-based index
                in the decoder input).
            self_cache: list of ``(key, value)``, each ``(B, heads, S, head_dim)``, from ``init_self_cache`` or the
                previous step.
            cross_cache: list of ``(key, value)``, each ``(B, heads, T, head_dim)``, from ``precompute_cross_cache``.
            encoder_padding_mask: bool ``(B, T)``, ``True`` = real frame, or ``None``.
            position_ids: int ``(B, 1)``. Defaults to ``pad_id + 1 + step_index``, which is what
                ``decoder_position_ids`` gives when no earlier input token is a pad. A caller that may feed pads
                passes the running count (as ``greedy_attention_decode`` does) to match the full pass exactly.

        Returns:
            ``(logits (B, vocab_size), new_self_cache)``.
        """
        if not self.built:
            self.build()
        token_ids = ops.cast(token_ids, "int32")
        step_index = ops.cast(step_index, "int32")
        if position_ids is None:
            position_ids = ops.zeros_like(token_ids) + (self.pad_id + 1) + step_index
        x = self.embed(token_ids, position_ids, training=False)
        cache_length = ops.shape(self_cache[0][0])[2]
        self_mask = causal_attention_mask(1, cache_length, cache_index=step_index)  # slots <= step_index
        cross_mask = None if encoder_padding_mask is None else attention_mask_from_padding(encoder_padding_mask)
        new_cache = []
        for layer, cache, cross in zip(self.decoder_layers, self_cache, cross_cache):
            x, cache = layer(
                x,
                self_attention_mask=self_mask,
                cross_attention_mask=cross_mask,
                self_cache=cache,
                cache_update_index=step_index,
                cross_cache=cross,
                training=False,
            )
            new_cache.append(cache)
        logits = self.lm_head(self.final_norm(x))
        return logits[:, 0, :], new_cache

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "vocab_size": self.vocab_size,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation_dropout": self.activation_dropout,
            "max_positions": self.max_positions,
            "pad_id": self.pad_id,
        }
