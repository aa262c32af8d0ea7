"""Masks: the only module that builds, merges or applies padding and attention masks.

Polarity, everywhere in aslfs:

- ``padding_mask``: bool (B, T), **True = real frame / real token**, False = padding.
- attention mask: bool broadcastable to (B, Lq, Lk) (or (B, H, Lq, Lk)), **True = the query may attend to the key**.

Masked attention scores are filled with the *minimum* of the score dtype (:func:`masked_fill_value`), never with a
hard-coded ``-1e9``, which overflows in float16 (docs/reference.md §10). Two forms:

- :func:`masked_softmax` fills with ``where``: garbage (NaN, inf) at masked positions cannot leak into the softmax;
- :func:`attention_bias` is the same mask as an additive bias (0 / dtype minimum), built once and added to the
  scores: cheaper (no full-size select in the forward and backward pass), for scores known to be finite (the
  encoder zeroes its input at pads, so its scores are).

All functions use ``keras.ops`` only and keep static shapes (no gathers of valid frames), so they run eagerly, under
``jit_compile=True`` / ``jax.jit`` and in a TFLite graph.
"""

from __future__ import annotations

import numpy as np
from keras import ops


def masked_fill_value(dtype) -> float:
    """The value masked attention scores are filled with: the minimum finite value of ``dtype``.

    Args:
        dtype: a float dtype (string, numpy dtype or a backend dtype with a ``name``).

    Returns:
        Python float, e.g. ``-3.4028235e38`` for float32, ``-65504.0`` for float16.
    """
    name = getattr(dtype, "name", dtype)
    name = str(name).replace("tf.", "").replace("torch.", "")
    if name == "bfloat16":
        return -3.3895313892515355e38
    return float(np.finfo(np.dtype(name)).min)


def _to_bool(mask):
    if mask is None:
        return None
    if ops.dtype(mask) != "bool":
        mask = ops.not_equal(mask, 0)
    return mask


def attention_mask_from_padding(padding_mask, query_padding_mask=None):
    """Attention mask from key (and optionally query) padding masks.

    Args:
        padding_mask: bool (B, Lk), True = real key.
        query_padding_mask: optional bool (B, Lq), True = real query. When given, a pair (i, j) may attend only if
            both i and j are real (the reference encoder's 2-D mask); rows of padded queries are then fully masked,
            which gives a uniform (finite) softmax on those rows. When omitted, only keys are masked.

    Returns:
        bool (B, 1, Lk) when ``query_padding_mask`` is None, else bool (B, Lq, Lk).
    """
    keys = _to_bool(padding_mask)[:, None, :]
    if query_padding_mask is None:
        return keys
    queries = _to_bool(query_padding_mask)[:, :, None]
    return ops.logical_and(queries, keys)


def causal_attention_mask(query_length, key_length=None, cache_index=0):
    """Causal mask: query i (at absolute position ``cache_index + i``) may attend to keys 0 … ``cache_index + i``.

    Args:
        query_length: int or scalar tensor, Lq.
        key_length: int or scalar tensor, Lk. Defaults to ``query_length``.
        cache_index: int or scalar tensor, the absolute position of the first query (the number of tokens already in
            a KV cache). Defaults to 0.

    Returns:
        bool (1, Lq, Lk).
    """
    if key_length is None:
        key_length = query_length
    rows = ops.arange(query_length, dtype="int32")[:, None] + ops.cast(cache_index, "int32")
    cols = ops.arange(key_length, dtype="int32")[None, :]
    return ops.greater_equal(rows, cols)[None]


def merge_attention_masks(*masks):
    """Logical AND of attention masks (None entries are skipped); returns None when all are None.

    Args:
        *masks: bool tensors broadcastable to a common shape (e.g. (B, 1, Lk) and (1, Lq, Lk)).

    Returns:
        bool tensor of the broadcast shape, or None.
    """
    merged = None
    for mask in masks:
        if mask is None:
            continue
        mask = _to_bool(mask)
        merged = mask if merged is None else ops.logical_and(merged, mask)
    return merged


def apply_padding_mask(x, padding_mask):
    """Set every padded position of ``x`` to zero (with ``where``, so NaN/inf garbage at pads is removed too).

    Args:
        x: (B, T, ...) tensor.
        padding_mask: bool (B, T), True = real frame; None leaves ``x`` unchanged.

    Returns:
        ``x`` with ``x[b, t, ...] = 0`` wherever ``padding_mask[b, t]`` is False.
    """
    if padding_mask is None:
        return x
    mask = _to_bool(padding_mask)
    mask = ops.reshape(mask, ops.shape(mask) + (1,) * (len(x.shape) - 2))
    return ops.where(mask, x, ops.zeros_like(x))


def attention_bias(attention_mask, dtype="float32"):
    """Additive form of an attention mask: 0 where attending is allowed, the ``dtype`` minimum elsewhere.

    ``softmax(scores + bias)`` equals :func:`masked_softmax` for finite scores of magnitude below ~1e30 (adding a
    small number to the float32 minimum rounds back to the minimum, so nothing overflows) and costs one broadcast add
    instead of a full-size select in the forward *and* the backward pass. Computed once per forward pass (it is
    mask-shaped, e.g. (B, 1, 1, Lk)) and shared by every layer. Use :func:`masked_softmax` where the scores may
    hold NaN/inf garbage.

    Args:
        attention_mask: bool, True = may attend, e.g. (B, 1, Lk) from :func:`attention_mask_from_padding`.
        dtype: float dtype of the bias (the dtype the softmax runs in). Defaults to float32.

    Returns:
        float tensor of ``attention_mask``'s shape with a head axis inserted at position 1 (e.g. (B, 1, 1, Lk)),
        ready to add to (B, H, Lq, Lk) scores.
    """
    mask = ops.expand_dims(_to_bool(attention_mask), 1)
    zero = ops.zeros((), dtype=dtype)
    return ops.where(mask, zero, ops.full((), masked_fill_value(dtype), dtype=dtype))


def masked_softmax(scores, attention_mask=None, axis=-1):
    """Softmax over ``axis`` in float32 with masked entries filled by the float32 minimum.

    Args:
        scores: attention scores, e.g. (B, H, Lq, Lk), any float dtype.
        attention_mask: bool, True = may attend; None = no mask. Either broadcastable to ``scores``, or of rank one
            less (a (B, Lq, Lk) / (B, 1, Lk) mask for (B, H, Lq, Lk) scores), in which case a head axis is inserted
            at position 1.
        axis: the key axis. Defaults to -1.

    Returns:
        float32 probabilities of the shape of ``scores`` (cast back by the caller if needed). A fully masked row gives
        a uniform distribution, never NaN.
    """
    scores = ops.cast(scores, "float32")
    if attention_mask is not None:
        attention_mask = _to_bool(attention_mask)
        if len(attention_mask.shape) == len(scores.shape) - 1:
            attention_mask = ops.expand_dims(attention_mask, 1)
        scores = ops.where(attention_mask, scores, masked_fill_value("float32"))
    return ops.softmax(scores, axis=axis)
