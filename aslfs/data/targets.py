"""Decoder targets (docs/reference.md §1.7, §3.12, §4.9): forward labels, shifted decoder inputs with decoder-input
masking, and the round-2 backward decoder's labels.

Ids: characters 0–58, pad 59, start 60, end 61, mask 62 (:mod:`aslfs.vocab`). Every function returns int32 arrays.

- Forward labels (33,): characters (truncated to 32) + end, right-padded with 59. The loss is taken against these
  *unmasked* labels over all 33 positions, pads included (§4.10).
- Decoder input: the labels with decoder-input masking applied (each position → 62 with probability ``p``, before
  shifting, characters, end and pads alike), then shifted right: start 60 at position 0, the last token dropped
  (HF ``shift_tokens_right``).
- Backward labels (batch-level, :func:`collate_backward`): the valid tokens (characters + end) of each sample with
  the characters reversed and the end kept last, then **QUIRK** padded with id 0 (the space character) to the
  longest target *of the batch* (PyTorch ``pad_sequence`` default); those 0-pads are fed as decoder inputs and scored
  as targets. ``pad_fixed=True`` pads with 59 to 33 instead (static shape, pads are real pad tokens).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from aslfs.vocab import END_ID, MASK_ID, MAX_TARGET_LEN, PAD_ID, START_ID, target_ids

#: Pad value of the faithful backward labels (``pad_sequence`` default; id 0 is the space character).
BACKWARD_PAD_ID = 0


def encode_target(phrase: str, length: int = MAX_TARGET_LEN) -> np.ndarray:
    """Forward labels (length,) int32: characters (truncated to ``length − 1``) + end, padded with 59."""
    return target_ids(phrase, length)


def target_mask(labels: np.ndarray) -> np.ndarray:
    """True on the characters and the end token (the reference ``attention_mask``): positions up to and including
    the first end token. Works on (..., L)."""
    labels = np.asarray(labels)
    is_end = labels == END_ID
    first_end = np.where(is_end.any(-1), is_end.argmax(-1), labels.shape[-1] - 1)
    return np.arange(labels.shape[-1]) <= first_end[..., None]


def mask_decoder_tokens(ids: np.ndarray, rng: np.random.Generator | None, p: float) -> np.ndarray:
    """Decoder-input masking (§3.12): a copy of ``ids`` with each position replaced by 62 with probability ``p``.

    ``rng=None`` or ``p=0`` returns an unmasked copy (evaluation)."""
    out = np.array(ids, dtype=np.int32, copy=True)
    if rng is None or p <= 0:
        return out
    out[rng.random(out.shape) < p] = MASK_ID
    return out


def shift_right(ids: np.ndarray, start_id: int = START_ID) -> np.ndarray:
    """Shift (..., L) right by one along the last axis: ``start_id`` at position 0, the last token dropped."""
    ids = np.asarray(ids, dtype=np.int32)
    out = np.empty_like(ids)
    out[..., 0] = start_id
    out[..., 1:] = ids[..., :-1]
    return out


def decoder_input_ids(labels: np.ndarray, rng: np.random.Generator | None = None, p: float = 0.0) -> np.ndarray:
    """Decoder input for ``labels``: masked with probability ``p`` (before shifting), then :func:`shift_right`."""
    return shift_right(mask_decoder_tokens(labels, rng, p))


def backward_labels(labels: Sequence[np.ndarray] | np.ndarray, pad_fixed: bool = False) -> np.ndarray:
    """Backward decoder labels (B, L) for a batch of forward labels (§4.9).

    Each row: the characters of the forward labels reversed, then the end token. Faithful: padded with 0 to
    ``L = max(n_chars + 1)`` over the batch (**QUIRK**). ``pad_fixed``: padded with 59 to the forward length (33).

    Args:
        labels: B forward label arrays (each (33,), as :func:`encode_target`), or a (B, 33) array.
    """
    labels = [np.asarray(row) for row in labels]
    if not labels:
        raise ValueError("backward_labels: empty batch")
    valid = [row[target_mask(row)] for row in labels]
    rows = [np.concatenate([v[:-1][::-1], v[-1:]]) if v[-1] == END_ID else v[::-1] for v in valid]
    if pad_fixed:
        length, pad = max(len(r) for r in labels), PAD_ID
    else:
        length, pad = max(len(r) for r in rows), BACKWARD_PAD_ID
    out = np.full((len(rows), length), pad, dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def collate_backward(labels: Sequence[np.ndarray] | np.ndarray, rng: np.random.Generator | None = None,
                     p: float = 0.0, pad_fixed: bool = False,
                     length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Backward labels and backward decoder input for one batch (round 2, training only).

    Returns ``(bwd_labels, bwd_decoder_input)``, both int32 (B, L): :func:`backward_labels`, and the same with
    decoder-input masking (probability ``p``, drawn over the whole (B, L) array as the reference does) shifted right
    with the start token. Faithful ``L`` varies with the batch (≤ 33); ``pad_fixed`` gives L = 33.

    ``length``: pad both arrays on with :data:`BACKWARD_PAD_ID` to this many positions (static shapes for the
    training loader). The decoder is causal, so the extra positions change no logit before them; the loss scores
    only the first ``L`` (:mod:`aslfs.training.losses`).
    """
    bwd = backward_labels(labels, pad_fixed=pad_fixed)
    bwd_in = decoder_input_ids(bwd, rng, p)
    if length is not None and bwd.shape[1] < length:
        extra = ((0, 0), (0, int(length) - bwd.shape[1]))
        bwd = np.pad(bwd, extra, constant_values=BACKWARD_PAD_ID)
        bwd_in = np.pad(bwd_in, extra, constant_values=BACKWARD_PAD_ID)
    return bwd, bwd_in
