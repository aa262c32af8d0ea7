"""Greedy decoding (cached, ensemble-ready, TFLite-convertible), CTC greedy decoding and post-processing.

Conventions: ids follow ``aslfs.vocab`` (pad 59, start 60, end 61); a decoder is an
``aslfs.models.decoder.SpeechTransformerDecoder``; ``encoder_padding_mask`` is bool ``(B, T)`` with ``True`` = real
frame. ``greedy_attention_decode`` and ``ctc_greedy_decode_ops`` use ``keras.ops`` only (static-shape loop state),
so they run eagerly, under ``tf.function(jit_compile=True)``/``jax.jit``, and inside a TFLite export.

Names. The *decoder* is a part of the model: ``SpeechTransformerDecoder``, a stack of
``aslfs.layers.decoder_block.DecoderBlock`` (the model's ``decoder``; its ``backward_decoder`` only adds a training
loss). *Decoding* is this module's algorithms that turn a model's outputs into token ids: ``greedy_attention_decode``
runs the decoder token by token over the encoder output (with caches; ``greedy_attention_decode_uncached`` is its
oracle), ``ctc_greedy_decode`` / ``ctc_greedy_decode_ops`` read the CTC head's logits. Which head an exported model
decodes with is the params key ``export.head`` (``attention`` or ``ctc``).

TFLite notes (checked by ``tests/test_decoding.py``, TF 2.21, builtin ops only):
- The ``ops.while_loop`` with a data-dependent condition (early stop) converts to a TFLite ``WHILE`` and stops early
  inside the interpreter; ``ops.slice_update`` becomes ``DYNAMIC_UPDATE_SLICE``.
- ``keras.ops.argmax`` on floats emits ``BitwiseAnd`` on the TF backend (a negative-zero fix), which is not a builtin:
  ``_argmax_last`` is used instead.
- The caches are heads-major ``(B, heads, L, head_dim)`` so that attention is two ``BATCH_MATMUL`` per step without
  transposing or slicing the cross-attention cache in every loop iteration (the ``(B, L, heads, head_dim)`` layout
  cost about 10x more time at T = 384).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from keras import ops

from aslfs.vocab import DUMMY_PHRASE, END_ID, MAX_TARGET_LEN, PAD_ID, START_ID, decode

__all__ = [
    "greedy_attention_decode",
    "greedy_attention_decode_uncached",
    "tokens_to_text",
    "ctc_greedy_decode",
    "ctc_greedy_decode_ops",
    "apply_dummy_rule",
]


def _as_members(decoders, encoder_outputs, encoder_padding_masks, weights):
    """Normalise the ensemble arguments to equal-length lists; a single decoder may be passed bare."""
    if not isinstance(decoders, (list, tuple)):
        decoders = [decoders]
        encoder_outputs = [encoder_outputs]
        encoder_padding_masks = [encoder_padding_masks]
    decoders = list(decoders)
    encoder_outputs = list(encoder_outputs)
    if encoder_padding_masks is None:
        encoder_padding_masks = [None] * len(decoders)
    encoder_padding_masks = list(encoder_padding_masks)
    if not decoders:
        raise ValueError("greedy decoding needs at least one decoder")
    if not len(decoders) == len(encoder_outputs) == len(encoder_padding_masks):
        raise ValueError(
            f"greedy decoding: {len(decoders)} decoders, {len(encoder_outputs)} encoder outputs and "
            f"{len(encoder_padding_masks)} masks; they must match one to one"
        )
    if weights is None:
        weights = [1.0 / len(decoders)] * len(decoders)
    weights = [float(w) for w in weights]
    if len(weights) != len(decoders):
        raise ValueError(f"greedy decoding: {len(weights)} ensemble weights for {len(decoders)} decoders")
    vocab = {d.vocab_size for d in decoders}
    if len(vocab) != 1:
        raise ValueError(f"greedy decoding: the decoders have different vocabulary sizes {sorted(vocab)}")
    return decoders, encoder_outputs, encoder_padding_masks, weights, vocab.pop()


def _argmax_last(x):
    """``argmax`` over the last axis (first maximum on ties) from TFLite builtin ops only.

    ``keras.ops.argmax`` on floats adds a negative-zero fix on the TensorFlow backend (``BitwiseAnd``), which TFLite
    builtins lack; max + equal + min-of-index is equivalent and converts. A row with NaN gives the last index.
    """
    size = x.shape[-1]
    best = ops.max(x, axis=-1, keepdims=True)
    index = ops.where(ops.equal(x, best), ops.arange(size, dtype="int32"), size - 1)
    return ops.min(index, axis=-1)


def _num_steps(max_steps, force_steps):
    max_steps = int(max_steps)
    if max_steps < 1:
        raise ValueError(f"greedy decoding: max_steps must be >= 1, got {max_steps}")
    if force_steps is None:
        return max_steps, max_steps
    force_steps = int(force_steps)
    if not 1 <= force_steps <= max_steps:
        raise ValueError(f"greedy decoding: force_steps must be in [1, max_steps={max_steps}], got {force_steps}")
    return max_steps, force_steps


def greedy_attention_decode(
    decoders,
    encoder_outputs,
    encoder_padding_masks=None,
    max_steps: int = MAX_TARGET_LEN,
    early_stop: bool = True,
    force_steps: int | None = None,
    weights: Sequence[float] | None = None,
    start_id: int = START_ID,
    end_id: int = END_ID,
    pad_id: int = PAD_ID,
    return_num_steps: bool = False,
    count_pad_positions: bool = False,
):
    """Batched greedy decoding with a KV cache, averaging the logits of an ensemble of decoders at every step.

    Step ``k`` feeds one token to every decoder (the start id at ``k = 0``, afterwards the previous step's pick),
    computes ``sum_i weights[i] * logits_i`` (the reference's ensemble rule, docs/reference.md §7.2: logits, not
    probabilities, are averaged), takes the argmax and feeds the same token to every decoder next. Each decoder keeps
    a fixed-size self-attention cache of ``max_steps`` slots and a cross-attention cache computed once, so the loop
    state has static shapes (``ops.while_loop``): it traces under ``jit_compile`` and converts to TFLite.

    After a sequence has produced the end id its later tokens are the pad id (they are also what is fed back, so
    they cannot change anything before the end thanks to causal attention), and its later rows of ``step_logits``
    are one-hot on pad, like the reference TFLite module; ``argmax(step_logits, -1) == token_ids`` always holds.
    Position ids use the running count of non-pad tokens carried in the loop state, exactly as the full pass does
    (teacher forcing, and the reference's PyTorch decoding of the whole prefix). ``count_pad_positions=True`` counts
    every token fed instead, as the reference's cached TensorFlow port does (docs/reference.md §7.2); the two differ
    only after a pad id is picked before the end id.

    Args:
        decoders: a ``SpeechTransformerDecoder`` or a list of them (ensemble members).
        encoder_outputs: float ``(B, T_i, D_i)`` per decoder (same ``B``; ``T`` and ``D`` may differ per member).
        encoder_padding_masks: bool ``(B, T_i)`` per decoder, ``True`` = real frame; ``None`` or ``None``
            entries mean every frame is real.
        max_steps: int. Number of output slots (and self-cache slots). Defaults to ``33``.
        early_stop: bool. Stop as soon as every sequence in the batch has produced the end id. Defaults to ``True``.
        force_steps: int or ``None``. Run exactly this many steps (``<= max_steps``) whatever is generated; no early
            stop (for benchmarks). Slots after ``force_steps`` stay pad.
        weights: ensemble weights, one per decoder, used as given. Defaults to equal weights ``1 / n``.
        start_id, end_id, pad_id: token ids. Default to 60, 61, 59.
        return_num_steps: bool. Also return the number of loop iterations run (scalar int32 tensor).
        count_pad_positions: bool. Count a fed-back pad token in later position ids. Defaults to ``False``.

    Returns:
        ``(token_ids, step_logits)``: int32 ``(B, max_steps)`` (end id included, pad after it) and float32
        ``(B, max_steps, vocab)``; with ``return_num_steps`` a third element, the number of steps run.
    """
    decoders, encoder_outputs, masks, weights, vocab_size = _as_members(
        decoders, encoder_outputs, encoder_padding_masks, weights
    )
    max_steps, num_steps = _num_steps(max_steps, force_steps)
    stop_early = bool(early_stop) and force_steps is None
    cross_caches = [d.precompute_cross_cache(e, m) for d, e, m in zip(decoders, encoder_outputs, masks)]
    pad_row = ops.one_hot(ops.convert_to_tensor([pad_id], dtype="int32"), vocab_size, dtype="float32")  # (1, V)
    initial = _initial_loop_state(decoders, cross_caches, ops.shape(encoder_outputs[0])[0], max_steps, pad_row,
                                  start_id, pad_id)

    def cond(step, current, count, finished, *rest):
        running = ops.less(step, num_steps)
        if stop_early:
            running = ops.logical_and(running, ops.logical_not(ops.all(finished)))
        return running

    body = _loop_body(decoders, cross_caches, masks, weights, pad_row, pad_id, end_id, count_pad_positions)
    state = ops.while_loop(cond, body, initial, maximum_iterations=num_steps)
    if return_num_steps:
        return state[4], state[5], state[0]
    return state[4], state[5]


def _initial_loop_state(decoders, cross_caches, batch_size, max_steps, pad_row, start_id, pad_id):
    """The loop state of :func:`greedy_attention_decode`: ``(step, current token, non-pad count, finished, tokens,
    step_logits, *self caches)``; the caches are flat, the (key, value) pairs of every layer of every decoder."""
    self_caches = []
    for d, cross in zip(decoders, cross_caches):
        for key, value in d.init_self_cache(batch_size, max_steps, dtype=cross[0][0].dtype):
            self_caches.extend((key, value))
    vocab_size = pad_row.shape[-1]
    tokens = ops.full((batch_size, max_steps), pad_id, dtype="int32")
    step_logits = ops.broadcast_to(ops.expand_dims(pad_row, 1), (batch_size, max_steps, vocab_size))
    current = ops.full((batch_size,), start_id, dtype="int32")
    count = ops.zeros((batch_size,), dtype="int32")
    finished = ops.zeros((batch_size,), dtype="bool")
    step = ops.convert_to_tensor(0, dtype="int32")
    return (step, current, count, finished, tokens, step_logits, *self_caches)


def _loop_body(decoders, cross_caches, masks, weights, pad_row, pad_id, end_id, count_pad_positions=False):
    """One step of :func:`greedy_attention_decode`: feed the current token to every decoder, mix their logits with
    the ensemble weights, pick the argmax (pad once finished) and write it and its logits into slot ``step``."""
    layer_counts = [d.num_layers for d in decoders]

    def body(step, current, count, finished, tokens, step_logits, *caches):
        not_pad = ops.not_equal(current, pad_id)
        count = count + (1 if count_pad_positions else ops.cast(not_pad, "int32"))
        position_ids = ops.expand_dims(ops.where(not_pad, count + pad_id, pad_id), 1)
        token_ids = ops.expand_dims(current, 1)
        mixed = None
        new_caches = []
        offset = 0
        for decoder, cross, mask, weight, n in zip(decoders, cross_caches, masks, weights, layer_counts):
            own = [(caches[offset + 2 * i], caches[offset + 2 * i + 1]) for i in range(n)]
            logits, cache = decoder.step(token_ids, step, own, cross, mask, position_ids=position_ids)
            offset += 2 * n
            for key, value in cache:
                new_caches.extend((key, value))
            term = ops.cast(logits, "float32") * weight
            mixed = term if mixed is None else mixed + term
        picked = ops.where(finished, pad_id, _argmax_last(mixed))
        mixed = ops.where(ops.expand_dims(finished, 1), pad_row, mixed)
        tokens = ops.slice_update(tokens, (0, step), ops.expand_dims(picked, 1))
        step_logits = ops.slice_update(step_logits, (0, step, 0), ops.expand_dims(mixed, 1))
        finished = ops.logical_or(finished, ops.equal(picked, end_id))
        return (step + 1, picked, count, finished, tokens, step_logits, *new_caches)

    return body


def greedy_attention_decode_uncached(
    decoders,
    encoder_outputs,
    encoder_padding_masks=None,
    max_steps: int = MAX_TARGET_LEN,
    early_stop: bool = True,
    force_steps: int | None = None,
    weights: Sequence[float] | None = None,
    start_id: int = START_ID,
    end_id: int = END_ID,
    pad_id: int = PAD_ID,
    return_num_steps: bool = False,
):
    """Reference-style greedy decoding (docs/reference.md §6.1): re-run every decoder on the whole prefix each step.

    Same arguments and results as ``greedy_attention_decode``; eager Python loop, numpy results. It documents the
    reference behaviour and is the oracle of the cache test. One difference from the PyTorch reference: after a
    sequence's end id we feed pad (as ``greedy_attention_decode`` does) where the reference feeds its argmax; with
    causal attention this does not change any token up to and including the end id, which is all that the reference
    keeps.
    """
    decoders, encoder_outputs, masks, weights, vocab_size = _as_members(
        decoders, encoder_outputs, encoder_padding_masks, weights
    )
    max_steps, num_steps = _num_steps(max_steps, force_steps)
    stop_early = bool(early_stop) and force_steps is None
    batch_size = int(ops.shape(encoder_outputs[0])[0])
    pad_row = np.eye(vocab_size, dtype=np.float32)[pad_id]
    tokens = np.full((batch_size, max_steps), pad_id, dtype=np.int32)
    step_logits = np.broadcast_to(pad_row, (batch_size, max_steps, vocab_size)).copy()
    finished = np.zeros(batch_size, dtype=bool)
    prefix = np.full((batch_size, 1), start_id, dtype=np.int32)
    steps_run = 0
    for step in range(num_steps):
        if stop_early and finished.all():
            break
        mixed = 0.0
        for decoder, encoder_output, mask, weight in zip(decoders, encoder_outputs, masks, weights):
            logits = decoder(prefix, encoder_output, mask, training=False)
            mixed = mixed + ops.convert_to_numpy(ops.cast(logits[:, -1, :], "float32")) * weight
        picked = np.argmax(mixed, axis=-1).astype(np.int32)
        picked = np.where(finished, pad_id, picked)
        mixed = np.where(finished[:, None], pad_row[None, :], mixed)
        tokens[:, step] = picked
        step_logits[:, step] = mixed
        finished |= picked == end_id
        prefix = np.concatenate([prefix, picked[:, None]], axis=1)
        steps_run += 1
    if return_num_steps:
        return tokens, step_logits, steps_run
    return tokens, step_logits


def tokens_to_text(token_ids, end_id: int = END_ID, empty_without_end: bool = False) -> list[str]:
    """Texts of generated id rows, cut before the first end id (docs/reference.md §6.1 step 3-4).

    Ids outside the 59 characters (pad, start, end, mask) read as nothing.

    QUIRK of the reference's PyTorch validation decode: when a row has no end id, its cut index is 0 and the
    prediction is **empty**. The reference's TFLite path instead keeps every generated character. We follow the
    TFLite path by default (what is shipped is what is validated); ``empty_without_end=True`` reproduces the
    PyTorch-validation behaviour.

    Args:
        token_ids: int array-like ``(B, L)`` (e.g. ``greedy_attention_decode``'s first result), without the start id.
        end_id: the end id. Defaults to 61.
        empty_without_end: bool. Return ``""`` for rows without an end id. Defaults to ``False``.

    Returns:
        ``B`` strings.
    """
    rows = np.asarray(ops.convert_to_numpy(token_ids) if not isinstance(token_ids, (list, np.ndarray)) else token_ids)
    if rows.ndim == 1:
        rows = rows[None, :]
    texts = []
    for row in rows:
        ends = np.flatnonzero(row == end_id)
        if ends.size:
            row = row[: ends[0]]
        elif empty_without_end:
            row = row[:0]
        texts.append(decode(row))
    return texts


def ctc_greedy_decode_ops(ctc_logits, padding_mask, blank_id: int, pad_id: int = PAD_ID):
    """Greedy CTC decoding in ``keras.ops`` (static shapes; converts to TFLite): argmax, merge repeats, drop blanks.

    Args:
        ctc_logits: float ``(B, T, C)``.
        padding_mask: bool ``(B, T)``, ``True`` = real frame; frames outside it are ignored. ``None`` = all real.
        blank_id: int. The CTC blank class.
        pad_id: int. Filler of the unused output slots. Defaults to 59.

    Returns:
        ``(ids, lengths)``: int32 ``(B, T)`` decoded ids packed to the left then filled with ``pad_id``, and int32
        ``(B,)`` the number of decoded ids per row. Padded frames are removed before merging, so only a blank
        separates two equal ids (as in ``ctc_greedy_decode``).
    """
    best = _argmax_last(ctc_logits)  # (B, T)
    if padding_mask is None:
        valid = ops.ones_like(best, dtype="bool")
    else:
        valid = ops.cast(padding_mask, "bool")
    # Remove padded frames first by packing the valid frames to the left (stable), so that a repeat split by padding
    # merges; then merge repeats and drop blanks.
    best = _pack_left(best, valid, fill=blank_id)
    previous = ops.concatenate([ops.full_like(best[:, :1], -1), best[:, :-1]], axis=1)
    keep = ops.logical_and(ops.not_equal(best, previous), ops.not_equal(best, blank_id))
    ids = _pack_left(best, keep, fill=pad_id)
    return ids, ops.sum(ops.cast(keep, "int32"), axis=1)


def _pack_left(values, keep, fill):
    """Move ``values[b, t]`` where ``keep`` to the front of each row, in order, and fill the rest with ``fill``."""
    keep_i = ops.cast(keep, "int32")
    target = ops.cumsum(keep_i, axis=1) - 1  # destination slot of each kept element
    length = ops.shape(values)[1]
    slots = ops.arange(length, dtype="int32")
    # hit[b, t, j] = element t goes to slot j
    hit = ops.logical_and(
        ops.equal(ops.expand_dims(target, 2), ops.reshape(slots, (1, 1, -1))), ops.expand_dims(keep, 2)
    )
    hit_i = ops.cast(hit, "int32")
    packed = ops.sum(hit_i * ops.expand_dims(values, 2), axis=1)
    filled = ops.sum(hit_i, axis=1) > 0
    return ops.where(filled, packed, fill)


def ctc_greedy_decode(ctc_logits, padding_mask, blank_id: int, as_text: bool = False):
    """Greedy CTC decoding to Python lists (numpy): argmax per frame, ignore padded frames, merge repeats, drop blanks.

    Args:
        ctc_logits: float array-like ``(B, T, C)``.
        padding_mask: bool ``(B, T)``, ``True`` = real frame, or ``None``.
        blank_id: int. The CTC blank class.
        as_text: bool. Return strings (``aslfs.vocab.decode``) instead of id lists.

    Returns:
        ``B`` lists of ids, or ``B`` strings.
    """
    best = np.argmax(np.asarray(ops.convert_to_numpy(ctc_logits)), axis=-1)
    if padding_mask is None:
        valid = np.ones(best.shape, dtype=bool)
    else:
        valid = np.asarray(ops.convert_to_numpy(padding_mask)).astype(bool)
    out = []
    for row, mask in zip(best, valid):
        ids = []
        previous = None
        for i in row[mask]:
            i = int(i)
            if i != previous and i != blank_id:
                ids.append(i)
            previous = i
        out.append(decode(ids) if as_text else ids)
    return out


def apply_dummy_rule(
    texts: Sequence[str],
    seq_lens,
    confidences=None,
    min_frames: int = 15,
    min_confidence: float = 0.15,
    dummy: str = DUMMY_PHRASE,
) -> list[str]:
    """The reference's dummy-phrase post-processing (docs/reference.md §6.2).

    A prediction is replaced by ``dummy`` ("2 a-e -aroe") when its raw frame count is below ``min_frames``
    (round 1, ``pp_1``), or when ``confidences`` are given and the confidence is below ``min_confidence``
    (round 2, ``pp_2``).

    Args:
        texts: ``B`` predicted strings.
        seq_lens: ``B`` raw frame counts (before resizing/padding).
        confidences: ``B`` confidence **probabilities** (``sigmoid`` of the confidence head's logit; for an ensemble,
            the sigmoid of the averaged logits), or ``None`` for the round-1 rule.
        min_frames: int. Defaults to ``15``.
        min_confidence: float. Defaults to ``0.15``.
        dummy: the replacement string. Defaults to ``aslfs.vocab.DUMMY_PHRASE``.

    Returns:
        ``B`` strings.
    """
    texts = list(texts)
    seq_lens = np.asarray(seq_lens).reshape(-1)
    if len(seq_lens) != len(texts):
        raise ValueError(f"apply_dummy_rule: {len(texts)} texts but {len(seq_lens)} sequence lengths")
    replace = seq_lens < min_frames
    if confidences is not None:
        confidences = np.asarray(ops.convert_to_numpy(confidences), dtype=np.float64).reshape(-1)
        if len(confidences) != len(texts):
            raise ValueError(f"apply_dummy_rule: {len(texts)} texts but {len(confidences)} confidences")
        replace = replace | (confidences < min_confidence)
    return [dummy if r else t for t, r in zip(texts, replace)]
