"""Attention cores shared by both encoder attentions: ``softmax(scores + bias) · V`` with a hand-written, cheaper
backward pass, and the dispatch between it and the plain (dropout / boolean mask) formulation."""

from __future__ import annotations

from keras import ops

from aslfs.layers.masking import masked_softmax


def _forward(scores, value, attention_bias):
    probs = ops.softmax(ops.cast(scores, "float32") + attention_bias, axis=-1)
    probs = ops.cast(probs, value.dtype)
    return probs, ops.einsum("bhqk,bkhd->bqhd", probs, value)


@ops.custom_gradient
def _softmax_attention(scores, value, attention_bias):
    probs, output = _forward(scores, value, attention_bias)

    def grad(*args, upstream=None):
        d_output = args[0] if upstream is None else upstream  # (B, Tq, H, d)
        d_value = ops.einsum("bhqk,bqhd->bkhd", probs, d_output)
        d_probs = ops.einsum("bqhd,bkhd->bhqk", d_output, value)
        # rowsum(dP ∘ P) = dO · O per query (FlashAttention's identity): computed on (B, Tq, H, d), not on (B, H, Tq, Tk)
        row = ops.transpose(ops.sum(d_output * output, axis=-1), (0, 2, 1))[..., None]  # (B, H, Tq, 1)
        d_scores = probs * (d_probs - row)
        return ops.cast(d_scores, scores.dtype), d_value, ops.zeros_like(attention_bias)

    return output, grad


def softmax_attention(scores, value, attention_bias):
    """``softmax(scores + attention_bias, axis=-1) · value`` in float32 softmax, for self-attention cores.

    The gradient is written by hand: ``dS = P ∘ (dO·Vᵀ − rowsum(dO ∘ O))`` needs two elementwise passes over the
    (B, H, Tq, Tk) tensors instead of the four of the automatic softmax gradient (the row sums come from the much
    smaller (B, Tq, H, d) output). Values are identical to the plain formulation.

    Args:
        scores: (B, H, Tq, Tk) attention logits (already scaled).
        value: (B, Tk, H, d).
        attention_bias: float32, broadcastable to ``scores`` (e.g. (B, 1, 1, Tk) from
            ``aslfs.layers.masking.attention_bias``: 0 = attend, float32 minimum = masked). No gradient flows to it.

    Returns:
        (B, Tq, H, d).
    """
    return _softmax_attention(scores, value, ops.cast(attention_bias, "float32"))


def attend(scores, value, attention_mask, attention_bias, dropout_layer, training):
    """``softmax(scores) · value`` → (B, Tq, H, d), masked by the additive bias or by the boolean mask.

    Without an active probability dropout this is :func:`softmax_attention` (cheaper hand-written backward); with
    one, or with only a boolean mask, the plain formulation (``masked_softmax``, dropout, einsum).

    Args:
        scores: (B, H, Tq, Tk) scaled logits.
        value: (B, Tk, H, d).
        attention_mask: optional bool, True = may attend (``aslfs.layers.masking``).
        attention_bias: optional float32 additive mask (``aslfs.layers.masking.attention_bias``).
        dropout_layer: the ``keras.layers.Dropout`` applied to the probabilities.
        training: bool.
    """
    dropping = dropout_layer.rate > 0 and training
    if attention_mask is None and not dropping:
        bias = attention_bias if attention_bias is not None else ops.zeros((1, 1, 1, 1), "float32")
        return softmax_attention(scores, value, bias)
    if attention_bias is not None:
        probs = ops.softmax(ops.cast(scores, "float32") + attention_bias, axis=-1)
    else:
        probs = masked_softmax(scores, attention_mask)
    probs = dropout_layer(ops.cast(probs, value.dtype), training=training)
    return ops.einsum("bhqk,bkhd->bqhd", probs, value)
