"""One Squeezeformer block: MHSA → FFN → Conv → FFN with learnable pre-scales and post-LayerNorms."""

from __future__ import annotations

import keras

from aslfs.layers.convolution_module import ConvolutionModule
from aslfs.layers.feed_forward import FeedForward
from aslfs.layers.relative_position_multi_head_attention import RelativePositionMultiHeadAttention
from aslfs.layers.rotary_multi_head_attention import RotaryMultiHeadAttention
from aslfs.layers.scale_bias import ScaleBias

ATTENTION_TYPES = ("relative", "rotary")


@keras.saving.register_keras_serializable(package="aslfs")
class SqueezeformerBlock(keras.layers.Layer):
    """Squeezeformer block as the reference (docs/reference.md §4.2), a pure composition of its modules::

        h = LN1(x + MHSA(x ⊙ s1 + b1))
        h = LN2(h + FFN1(h ⊙ s2 + b2))
        h = LN3(h + Conv(h ⊙ s3 + b3))
        y = LN4(h + FFN2(h ⊙ s4 + b4))

    LayerNorms and FFNs act on every frame; the reference applies them to valid frames only, which gives identical
    valid-frame outputs (they are per-frame).

    Args:
        hidden_dim: int. Width D.
        num_heads: int. Attention heads.
        attention_type: str. ``"relative"`` (round 1) or ``"rotary"`` (round 2).
        feed_forward_expansion: int. FFN inner factor. Defaults to 1.
        conv_expansion: int. Conv-module pointwise expansion (2). Defaults to 2.
        conv_kernel_size: int. Depthwise kernel. Defaults to 51.
        dropout: float. FFN and conv-module dropout. Defaults to 0.1.
        attention_dropout: float. Attention probability and output dropout. Defaults to 0.1.
        layer_norm_epsilon: float. Defaults to 1e-5.
        batchnorm_epsilon: float. Conv-module BatchNorm epsilon. Defaults to 1e-5.
        batchnorm_momentum: float. Conv-module BatchNorm Keras momentum. Defaults to 0.9.
        **kwargs: passed to ``keras.layers.Layer``.

    Masking: ``padding_mask`` (B, T) bool, True = real frame (the conv module zeroes pads and its BatchNorm uses
    valid frames); ``attention_mask`` bool (B, 1, T) or (B, T, T), True = may attend. Real-frame outputs never depend
    on padding.

    Call arguments:
        inputs: (B, T, D).
        position_embedding: (2T − 1, D) relative table, or (2, T, d_h) rotary ``[cos, sin]``.
        padding_mask: optional bool (B, T).
        attention_mask: optional bool, see above.
        attention_bias: optional float32 additive form of the attention mask (``aslfs.layers.masking.attention_bias``,
            (B, 1, 1, T)); used instead of ``attention_mask`` when given.
        training: bool.

    Returns:
        (B, T, D).
    """

    def __init__(self, hidden_dim, num_heads, attention_type="rotary", feed_forward_expansion=1, conv_expansion=2,
                 conv_kernel_size=51, dropout=0.1, attention_dropout=0.1, layer_norm_epsilon=1e-5,
                 batchnorm_epsilon=1e-5, batchnorm_momentum=0.9, mask_before_depthwise=True, **kwargs):
        super().__init__(**kwargs)
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}, got {attention_type!r}")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.attention_type = attention_type
        self.feed_forward_expansion = feed_forward_expansion
        self.conv_expansion = conv_expansion
        self.conv_kernel_size = conv_kernel_size
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.mask_before_depthwise = mask_before_depthwise
        self.batchnorm_epsilon = batchnorm_epsilon
        self.batchnorm_momentum = batchnorm_momentum
        policy = self.dtype_policy
        attention_class = RelativePositionMultiHeadAttention if attention_type == "relative" \
            else RotaryMultiHeadAttention
        self.attention = attention_class(hidden_dim, num_heads, dropout=attention_dropout, name="attention",
                                         dtype=policy)
        self.feed_forward_1 = FeedForward(hidden_dim, feed_forward_expansion, dropout, name="feed_forward_1",
                                          dtype=policy)
        self.convolution = ConvolutionModule(hidden_dim, conv_kernel_size, conv_expansion, dropout,
                                             epsilon=batchnorm_epsilon, momentum=batchnorm_momentum,
                                             mask_before_depthwise=mask_before_depthwise,
                                             name="convolution", dtype=policy)
        self.feed_forward_2 = FeedForward(hidden_dim, feed_forward_expansion, dropout, name="feed_forward_2",
                                          dtype=policy)
        self.scale_biases = [ScaleBias(name=f"scale_bias_{i}", dtype=policy) for i in range(1, 5)]
        self.layer_norms = [keras.layers.LayerNormalization(epsilon=layer_norm_epsilon, name=f"layer_norm_{i}",
                                                            dtype=policy) for i in range(1, 5)]

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        for layer in (self.attention, self.feed_forward_1, self.convolution, self.feed_forward_2,
                      *self.scale_biases, *self.layer_norms):
            layer.build(input_shape)
        self.built = True

    def call(self, inputs, position_embedding, padding_mask=None, attention_mask=None, attention_bias=None,
             training=None):
        sb1, sb2, sb3, sb4 = self.scale_biases
        ln1, ln2, ln3, ln4 = self.layer_norms
        h = ln1(inputs + self.attention(sb1(inputs), position_embedding, attention_mask=attention_mask,
                                        attention_bias=attention_bias, training=training))
        h = ln2(h + self.feed_forward_1(sb2(h), training=training))
        h = ln3(h + self.convolution(sb3(h), padding_mask=padding_mask, training=training))
        return ln4(h + self.feed_forward_2(sb4(h), training=training))

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "attention_type": self.attention_type,
            "feed_forward_expansion": self.feed_forward_expansion,
            "conv_expansion": self.conv_expansion,
            "conv_kernel_size": self.conv_kernel_size,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "mask_before_depthwise": self.mask_before_depthwise,
            "batchnorm_epsilon": self.batchnorm_epsilon,
            "batchnorm_momentum": self.batchnorm_momentum,
        }
