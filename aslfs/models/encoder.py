"""The Squeezeformer encoder: feature extractors, a shared position table and the block stack."""

from __future__ import annotations

import keras
from keras import ops

from aslfs.landmarks import NUM_LANDMARKS, PARTS
from aslfs.layers.feature_extractor import FeatureExtractor
from aslfs.layers.masking import apply_padding_mask, attention_bias, attention_mask_from_padding
from aslfs.layers.relative_position_embedding import RelativePositionEmbedding
from aslfs.layers.rotary_embedding import RotaryEmbedding
from aslfs.layers.squeezeformer_block import SqueezeformerBlock
from aslfs.models.part_normalize import PART_ORDER, part_normalize


@keras.saving.register_keras_serializable(package="aslfs")
class SqueezeformerEncoder(keras.layers.Layer):
    """Landmarks (B, T, 130, 3) → encoder states (B, T, D) (docs/reference.md §4.1–§4.7).

    1. Zero the input at pad frames (garbage there must not leak through the stem's 3×3 kernel).
    2. Features: one ``FeatureExtractor`` over all 130 landmarks (width D). With ``part_extractors`` (round 2), plus
       one extractor per part (left hand, right hand, face, pose; D/4 each) over the per-part normalised input
       (``part_normalize``: per-frame standardisation and the dropped-landmark rule), concatenated and added.
       With ``global_extractor=False`` (beyond the reference) the part features alone.
    3. The position table, computed once and shared by every block: the relative sinusoidal table (2T − 1, D) for
       ``attention_type="relative"``; the rotary ``[cos, sin]`` (2, T, D/H) for ``"rotary"``.
    4. ``num_layers`` ``SqueezeformerBlock``s, then the pads are zeroed.

    No data-dependent shapes (masks, never gathers of valid frames), so it compiles with XLA and converts to TFLite.

    Args:
        hidden_dim: int. Width D.
        num_layers: int. Number of blocks.
        num_heads: int. Attention heads.
        attention_type: str. ``"relative"`` or ``"rotary"``.
        part_extractors: bool. Add the four part extractors (round 2).
        global_extractor: bool. Keep the all-landmark extractor (default True, the reference); False needs
            ``part_extractors``.
        feed_forward_expansion, conv_expansion, conv_kernel_size, dropout, attention_dropout, layer_norm_epsilon:
            block settings (see ``SqueezeformerBlock``).
        stem_channels: int. Conv2D channels of every extractor. Defaults to 32.
        max_len: int. Length of the rotary table (longest supported T). Defaults to 384.
        mask_stem_batchnorm: bool. See ``FeatureExtractor`` (True: deliberate deviation, stem statistics over
            valid frames; False: the reference). Defaults to True.
        batchnorm_epsilon: float. Defaults to 1e-5.
        stem_batchnorm_momentum, feature_batchnorm_momentum, conv_batchnorm_momentum: Keras momenta
            (0.9, 0.05, 0.9).
        **kwargs: passed to ``keras.layers.Layer``.

    Masking: ``padding_mask`` (B, T) bool, True = real frame; None = every frame real (the unpadded batch-1
    TFLite path). Outputs at real frames do not depend on the number or content of pad frames (in training with
    dropout 0, and in inference); outputs at pads are 0.

    Call arguments:
        landmarks: float (B, T, 130, 3), globally normalised (§2.1).
        padding_mask: optional bool (B, T).
        training: bool.

    Returns:
        (B, T, D).
    """

    def __init__(self, hidden_dim, num_layers, num_heads, attention_type="rotary", part_extractors=True,
                 global_extractor=True,
                 feed_forward_expansion=1, conv_expansion=2, conv_kernel_size=51, stem_channels=32, dropout=0.1,
                 attention_dropout=0.0, max_len=384, mask_stem_batchnorm=True, batchnorm_epsilon=1e-5,
                 stem_batchnorm_momentum=0.9, feature_batchnorm_momentum=0.05, conv_batchnorm_momentum=0.9,
                 layer_norm_epsilon=1e-5, mask_before_depthwise=True, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.attention_type = attention_type
        self.part_extractors = part_extractors
        self.global_extractor = global_extractor
        self.feed_forward_expansion = feed_forward_expansion
        self.conv_expansion = conv_expansion
        self.conv_kernel_size = conv_kernel_size
        self.stem_channels = stem_channels
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.max_len = max_len
        self.mask_stem_batchnorm = mask_stem_batchnorm
        self.batchnorm_epsilon = batchnorm_epsilon
        self.stem_batchnorm_momentum = stem_batchnorm_momentum
        self.feature_batchnorm_momentum = feature_batchnorm_momentum
        self.conv_batchnorm_momentum = conv_batchnorm_momentum
        self.layer_norm_epsilon = layer_norm_epsilon
        self.mask_before_depthwise = mask_before_depthwise
        if part_extractors and hidden_dim % 4:
            raise ValueError(f"part_extractors needs hidden_dim divisible by 4, got {hidden_dim}")
        if not (global_extractor or part_extractors):
            raise ValueError("global_extractor=False needs part_extractors=True")
        policy = self.dtype_policy

        def extractor(width, name):
            return FeatureExtractor(width, stem_channels, mask_stem_batchnorm, batchnorm_epsilon,
                                    stem_batchnorm_momentum, feature_batchnorm_momentum, name=name, dtype=policy)

        # === Layers ===
        self.feature_extractor = extractor(hidden_dim, "feature_extractor") if global_extractor else None
        self.part_feature_extractors = [extractor(hidden_dim // 4, f"{part}_feature_extractor")
                                        for part in PART_ORDER] if part_extractors else []
        if attention_type == "relative":
            self.position_embedding = RelativePositionEmbedding(hidden_dim, name="position_embedding", dtype=policy)
        elif attention_type == "rotary":
            self.position_embedding = RotaryEmbedding(hidden_dim // num_heads, max_len, name="position_embedding",
                                                      dtype=policy)
        else:
            raise ValueError(f"attention_type must be 'relative' or 'rotary', got {attention_type!r}")
        self.blocks = [
            SqueezeformerBlock(hidden_dim, num_heads, attention_type, feed_forward_expansion, conv_expansion,
                               conv_kernel_size, dropout, attention_dropout, layer_norm_epsilon, batchnorm_epsilon,
                               conv_batchnorm_momentum, mask_before_depthwise=mask_before_depthwise,
                               name=f"block_{i}", dtype=policy)
            for i in range(num_layers)
        ]

    def build(self, landmarks_shape, padding_mask_shape=None):
        batch, time = tuple(landmarks_shape)[:2]
        if self.feature_extractor is not None:
            self.feature_extractor.build((batch, time, NUM_LANDMARKS, 3))
        for part, layer in zip(PART_ORDER, self.part_feature_extractors):
            layer.build((batch, time, len(PARTS[part]), 3))
        for block in self.blocks:
            block.build((batch, time, self.hidden_dim))
        self.built = True

    def call(self, landmarks, padding_mask=None, training=None):
        x = apply_padding_mask(ops.cast(landmarks, self.compute_dtype), padding_mask)
        h = None
        if self.feature_extractor is not None:
            h = self.feature_extractor(x, padding_mask=padding_mask, training=training)
        if self.part_feature_extractors:
            parts = [layer(part_normalize(x, PARTS[name]), padding_mask=padding_mask, training=training)
                     for name, layer in zip(PART_ORDER, self.part_feature_extractors)]
            parts = ops.concatenate(parts, axis=-1)
            h = parts if h is None else h + parts
        position_embedding = self.position_embedding(h)
        # Key mask, as an additive bias (0 / float32 minimum) built once for all blocks.
        bias = None if padding_mask is None else attention_bias(attention_mask_from_padding(padding_mask))
        for block in self.blocks:
            h = block(h, position_embedding, padding_mask=padding_mask, attention_bias=bias, training=training)
        return apply_padding_mask(h, padding_mask)

    def compute_output_shape(self, landmarks_shape, padding_mask_shape=None):
        return tuple(landmarks_shape)[:2] + (self.hidden_dim,)

    @classmethod
    def from_model_config(cls, config, **kwargs):
        """Build from an ``aslfs.models.config.ModelConfig``."""
        return cls(
            hidden_dim=config.hidden_dim, num_layers=config.num_layers, num_heads=config.num_heads,
            attention_type=config.attention_type, part_extractors=config.part_extractors,
            global_extractor=config.global_extractor,
            feed_forward_expansion=config.feed_forward_expansion, conv_expansion=config.conv_expansion,
            conv_kernel_size=config.conv_kernel_size, stem_channels=config.stem_channels, dropout=config.dropout,
            attention_dropout=config.attention_dropout, max_len=config.max_len,
            mask_stem_batchnorm=config.mask_stem_batchnorm, batchnorm_epsilon=config.batchnorm_epsilon,
            stem_batchnorm_momentum=config.stem_batchnorm_momentum,
            feature_batchnorm_momentum=config.feature_batchnorm_momentum,
            conv_batchnorm_momentum=config.conv_batchnorm_momentum, layer_norm_epsilon=config.layer_norm_epsilon,
            mask_before_depthwise=config.mask_before_depthwise,
            **kwargs,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "attention_type": self.attention_type,
            "part_extractors": self.part_extractors,
            "global_extractor": self.global_extractor,
            "feed_forward_expansion": self.feed_forward_expansion,
            "conv_expansion": self.conv_expansion,
            "conv_kernel_size": self.conv_kernel_size,
            "stem_channels": self.stem_channels,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "max_len": self.max_len,
            "mask_stem_batchnorm": self.mask_stem_batchnorm,
            "batchnorm_epsilon": self.batchnorm_epsilon,
            "stem_batchnorm_momentum": self.stem_batchnorm_momentum,
            "feature_batchnorm_momentum": self.feature_batchnorm_momentum,
            "conv_batchnorm_momentum": self.conv_batchnorm_momentum,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "mask_before_depthwise": self.mask_before_depthwise,
        }
