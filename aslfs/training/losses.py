"""Training losses of the reference (docs/reference.md §4.9, §4.10), in ``keras.ops`` (any backend).

- ``CE`` = mean token cross-entropy over **all** ``B × L`` positions, pad targets included (the reference pads the
  forward targets with 59 to 33 and the backward targets with 0 to the batch's longest target, and scores both),
  optional label smoothing. The loader pads the backward arrays to 33 so that shapes stay static; ``CE_bwd`` is then
  taken over the first ``L`` positions only (``L`` = the batch's longest target), which is exactly the reference's
  value because the decoder is causal (positions ≥ L cannot change the logits before them).
- Round 1: ``L_att = CE_fwd``.
- Round 2: ``L_att = w_main · ((1 − w_bwd) · CE_fwd + w_bwd · CE_bwd) + w_aux · BCE(confidence_logit, score)`` with the
  reference's ``w_bwd = 0.4``, ``w_aux = 0.02``, ``w_main = 1 − w_aux = 0.98``.
- Optional CTC on the encoder's ``ctc_logits`` (not in the reference): ``L = (1 − w_ctc) · L_att + w_ctc · CTC``
  (``w_ctc = 0`` leaves ``L = L_att``; ``w_ctc = 1`` trains the CTC head alone). The CTC labels are the phrase's
  characters (no EOS), the input lengths the numbers of real frames; per sequence the loss is divided by its label
  length and then averaged over the batch (PyTorch ``CTCLoss(reduction="mean")``); infinite losses (more labels than
  frames than the labels need) count as 0 (``zero_infinity``).

All losses are computed in float32 (logits are cast first), so they are unchanged under a mixed-precision policy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from keras import ops

from aslfs.training import distribution
from aslfs.vocab import NUM_CHARS, PAD_ID, VOCAB_SIZE


def sequence_cross_entropy(targets, logits, label_smoothing: float = 0.0, length=None):
    """Mean cross-entropy over the positions of ``targets``.

    Args:
        targets: int ``(B, L)`` token ids (every position is scored, pads included).
        logits: float ``(B, L, V)``.
        label_smoothing: ``ε``; the target distribution is ``(1 − ε)·onehot + ε/V`` (PyTorch's convention).
        length: optional int scalar tensor: only positions ``< length`` are scored (mean over ``B × length``).

    Returns:
        float32 scalar.
    """
    logits = ops.cast(logits, "float32")
    log_probs = ops.log_softmax(logits, axis=-1)
    targets = ops.cast(targets, "int32")
    nll = -ops.squeeze(ops.take_along_axis(log_probs, ops.expand_dims(targets, -1), axis=-1), -1)
    if label_smoothing:
        smooth = -ops.mean(log_probs, axis=-1)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    if length is None:
        return ops.mean(nll)
    keep = ops.cast(ops.less(ops.arange(ops.shape(nll)[1], dtype="int32"), ops.cast(length, "int32")), "float32")
    return ops.sum(nll * keep) / (ops.cast(ops.shape(nll)[0], "float32") * ops.maximum(ops.sum(keep), 1.0))


def batch_target_length(token_ids, pad_id: int = PAD_ID):
    """Longest target of the batch (characters + EOS): the reference's backward label length (int32 scalar); of the
    global batch under data-parallel training (:mod:`aslfs.training.distribution`)."""
    lengths = ops.sum(ops.cast(ops.not_equal(ops.cast(token_ids, "int32"), pad_id), "int32"), axis=1)
    return distribution.all_reduce(ops.max(lengths), "max")


def confidence_bce(score, confidence_logit):
    """Mean binary cross-entropy with logits between the confidence head and the sample ``score`` (in [0, 1]).

    Args:
        score: float ``(B,)`` or ``(B, 1)``.
        confidence_logit: float ``(B,)`` or ``(B, 1)``.
    """
    logit = ops.reshape(ops.cast(confidence_logit, "float32"), (-1,))
    target = ops.reshape(ops.cast(score, "float32"), (-1,))
    # max(z, 0) − z·y + log(1 + exp(−|z|)): the stable form of −y·log σ(z) − (1 − y)·log(1 − σ(z)).
    loss = ops.relu(logit) - logit * target + ops.log1p(ops.exp(-ops.abs(logit)))
    return ops.mean(loss)


def ctc_labels(token_ids):
    """CTC labels and lengths from forward targets: the characters before EOS.

    Args:
        token_ids: int ``(B, L)`` targets (characters, EOS, pads).

    Returns:
        ``(labels (B, L) int32 with non-characters replaced by 0, lengths (B,) int32)``.
    """
    token_ids = ops.cast(token_ids, "int32")
    is_char = ops.less(token_ids, NUM_CHARS)
    # characters form a prefix (targets are chars + EOS + pads), so the count is the length
    lengths = ops.sum(ops.cast(is_char, "int32"), axis=1)
    labels = ops.where(is_char, token_ids, ops.zeros_like(token_ids))
    return labels, lengths


def ctc_loss(token_ids, ctc_logits, padding_mask, blank_id: int = VOCAB_SIZE):
    """Mean CTC loss (per sequence divided by its label length, infinite → 0).

    Args:
        token_ids: int ``(B, L)`` forward targets.
        ctc_logits: float ``(B, T, C)``.
        padding_mask: bool ``(B, T)``, True = real frame.
        blank_id: the blank class of the CTC head (the model's CTC head has ``vocab_size + 1`` classes, blank = 63).
    """
    labels, label_len = ctc_labels(token_ids)
    frames = ops.sum(ops.cast(padding_mask, "int32"), axis=1)
    per_seq = ops.ctc_loss(labels, ops.cast(ctc_logits, "float32"), label_len, frames, mask_index=blank_id)
    per_seq = ops.cast(per_seq, "float32") / ops.maximum(ops.cast(label_len, "float32"), 1.0)
    # an alignment needs one frame per label plus a blank between equal neighbours; backends return inf or a huge
    # finite value when there are fewer frames, so such sequences are zeroed explicitly (PyTorch's zero_infinity)
    position = ops.arange(ops.shape(labels)[1] - 1, dtype="int32")
    repeats = ops.logical_and(ops.equal(labels[:, 1:], labels[:, :-1]),
                              ops.less(position + 1, ops.expand_dims(label_len, 1)))
    needed = label_len + ops.sum(ops.cast(repeats, "int32"), axis=1)
    feasible = ops.logical_and(ops.greater_equal(frames, needed), ops.isfinite(per_seq))
    per_seq = ops.where(feasible, per_seq, ops.zeros_like(per_seq))
    return ops.mean(per_seq)


@dataclass(frozen=True)
class LossConfig:
    """Weights of the training loss (see the module docstring)."""

    label_smoothing: float = 0.0
    backward_weight: float = 0.4
    confidence_weight: float = 0.02
    ctc_weight: float = 0.0
    ctc_blank_id: int = VOCAB_SIZE
    #: ``batch``: CE_bwd over the first ``L`` positions, ``L`` = the batch's longest target (the reference's backward
    #: labels are padded with 0 to that length and scored; the loader pads them further to 33 for static shapes, and
    #: the positions beyond ``L`` are not scored — the causal decoder makes this exactly the reference loss).
    #: ``all``: every position (backward labels padded with 59 to 33, ``sampling.backward_pad_fixed``).
    backward_length: str = "batch"

    def to_dict(self) -> dict:
        return asdict(self)


def training_losses(y: dict, y_pred: dict, padding_mask, config: LossConfig) -> dict:
    """All loss terms of one batch.

    Args:
        y: targets ``{"token_ids" (B, 33), ["backward_token_ids" (B, Lb)], ["score" (B,)]}``.
        y_pred: model outputs ``{"logits", ["backward_logits"], ["confidence_logit"], ["ctc_logits"]}``. A term is
            computed when both its output and its target are present.
        padding_mask: bool ``(B, T)`` (for the CTC input lengths).
        config: the weights.

    Returns:
        ``{"loss": total, "ce": CE_fwd, ["ce_bwd"], ["bce"], ["ctc"]}`` float32 scalars.
    """
    out = {}
    ce = sequence_cross_entropy(y["token_ids"], y_pred["logits"], config.label_smoothing)
    out["ce"] = ce
    has_bwd = y_pred.get("backward_logits") is not None and y.get("backward_token_ids") is not None
    has_conf = y_pred.get("confidence_logit") is not None and y.get("score") is not None
    if has_bwd:
        length = batch_target_length(y["token_ids"]) if config.backward_length == "batch" else None
        out["ce_bwd"] = sequence_cross_entropy(y["backward_token_ids"], y_pred["backward_logits"],
                                               config.label_smoothing, length)
        decoder_loss = (1.0 - config.backward_weight) * ce + config.backward_weight * out["ce_bwd"]
    else:
        decoder_loss = ce
    if has_conf:
        out["bce"] = confidence_bce(y["score"], y_pred["confidence_logit"])
        attention = (1.0 - config.confidence_weight) * decoder_loss + config.confidence_weight * out["bce"]
    else:
        attention = decoder_loss
    if config.ctc_weight and y_pred.get("ctc_logits") is not None:
        out["ctc"] = ctc_loss(y["token_ids"], y_pred["ctc_logits"], padding_mask, config.ctc_blank_id)
        total = (1.0 - config.ctc_weight) * attention + config.ctc_weight * out["ctc"]
    else:
        total = attention
    out["loss"] = total
    return out
