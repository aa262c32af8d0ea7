"""Validation during training: greedy decoding of the validation rows → predictions table + metrics.

For every validation batch one compiled function (Keras ``predict_on_batch``: ``tf.function`` / ``jax.jit``) returns
the greedy decode (``aslfs.decoding.greedy_attention_decode`` with the KV cache, 33 steps, early stop) and the teacher-forced
outputs used for the validation losses. Then, over the whole validation set:

- ``score``: the competition score ``(N − D) / N`` with plain Levenshtein (primary), ``cer``, ``score_dl``
  (Damerau, the reference's local metric), from :func:`aslfs.metrics.score_report`;
- ``score_pp``: the competition score after the dummy-phrase rule (docs/reference.md §6.2): round 1 replaces
  predictions of sequences with fewer than ``pp_min_frames`` raw frames, round 2 also those whose confidence
  (sigmoid of the confidence logit) is below ``pp_min_confidence``;
- ``val_loss`` and its terms (``val_ce``, ``val_ce_bwd``, ``val_bce``): the training loss without augmentation or
  decoder-input masking, averaged over batches weighted by their size (as Keras' ``val_loss``).

The predictions table has one row per validation sequence, in table order: ``sequence_id, phrase, prediction,
seq_len, confidence, prediction_pp`` (``confidence`` is NaN without a confidence head).
"""

from __future__ import annotations

import contextlib
import time

import keras
import numpy as np
import pandas as pd

from aslfs.decoding import apply_dummy_rule, ctc_greedy_decode, greedy_attention_decode, tokens_to_text
from aslfs.metrics import competition_score, score_report
from aslfs.training import distribution
from aslfs.training.losses import LossConfig, training_losses
from aslfs.vocab import MAX_TARGET_LEN

PREDICTION_COLUMNS = ("sequence_id", "phrase", "prediction", "seq_len", "confidence", "prediction_pp")


class ValidationStep(keras.Model):
    """One validation batch: greedy decode plus the teacher-forced outputs of ``net`` (inference mode).

    Args:
        net: a ``FingerSpeller``.
        max_steps: greedy decoding steps (33).

    Call: the loader's ``x`` dict → ``{"token_ids" (B, max_steps) int32, "logits", ["backward_logits"],
    ["confidence_logit"], ["ctc_logits"]}``.
    """

    def __init__(self, net, max_steps: int = MAX_TARGET_LEN, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.max_steps = int(max_steps)
        self.built = True

    def call(self, inputs, training=False):
        outputs = dict(self.net(inputs, training=False))
        encoded, _ = self.net.encode(inputs["landmarks"], inputs["padding_mask"], training=False)
        token_ids, _ = greedy_attention_decode(self.net.decoder, encoded, inputs["padding_mask"], max_steps=self.max_steps)
        outputs["token_ids"] = token_ids
        return outputs


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Validator:
    """Runs the validation of a model on an evaluation :class:`~aslfs.training.loader.SequenceBatches`.

    Args:
        net: the ``FingerSpeller`` being trained.
        batches: evaluation batches (``training=False``) over ``table``.
        table: the validation rows (loader table: ``sequence_id``, ``phrase``, ``seq_len``, ...).
        loss_config: weights of the validation loss.
        round: 1 or 2 (the post-processing rule).
        pp_min_frames, pp_min_confidence: the dummy-phrase rule.
        empty_without_end: §6.1 QUIRK switch of ``tokens_to_text``.
    """

    def __init__(self, net, batches, table: pd.DataFrame, loss_config: LossConfig, round: int,
                 pp_min_frames: int = 15, pp_min_confidence: float = 0.15, empty_without_end: bool = False):
        self.net = net
        # multi-process training: a copy of net on this process's first device (distribution.local_copy)
        self.local = distribution.local_copy(net)
        with self._placement():
            self.step = ValidationStep(self.local)
        self.batches = batches
        self.table = table.reset_index(drop=True)
        self.loss_config = loss_config
        self.round = int(round)
        self.pp_min_frames = pp_min_frames
        self.pp_min_confidence = pp_min_confidence
        self.empty_without_end = empty_without_end

    def _placement(self):
        return distribution.undistributed() if self.local is not self.net else contextlib.nullcontext()

    def predict(self) -> tuple[pd.DataFrame, dict[str, float]]:
        """Decode every validation row; returns (predictions table in table order, validation losses)."""
        distribution.sync_copy(self.local, self.net)
        with self._placement():
            return self._predict()

    def _predict(self) -> tuple[pd.DataFrame, dict[str, float]]:
        n = len(self.table)
        texts = [""] * n
        ctc_texts: list[str] | None = None
        confidence = np.full(n, np.nan, np.float64)
        sums: dict[str, float] = {}
        count = 0
        for idx in range(len(self.batches)):
            rows = self.batches.rows(idx)
            x, y = self.batches.batch(idx)
            out = distribution.predict_on_batch(self.step, x)
            out = {k: np.asarray(v) for k, v in out.items()}
            for row, text in zip(rows, tokens_to_text(out["token_ids"], empty_without_end=self.empty_without_end)):
                texts[int(row)] = text
            if "ctc_logits" in out:
                if ctc_texts is None:
                    ctc_texts = [""] * n
                decoded = ctc_greedy_decode(out["ctc_logits"], x["padding_mask"], self.step.net.ctc_blank_id,
                                            as_text=True)
                for row, text in zip(rows, decoded):
                    ctc_texts[int(row)] = text[:MAX_TARGET_LEN - 1]
            if "confidence_logit" in out:
                confidence[rows] = _sigmoid(out["confidence_logit"].reshape(-1).astype(np.float64))
            terms = training_losses(y, out, x["padding_mask"], self.loss_config)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(rows)
            count += len(rows)
        losses = {("val_loss" if k == "loss" else f"val_{k}"): v / max(count, 1) for k, v in sums.items()}
        seq_len = self.table["seq_len"].to_numpy()
        conf = confidence if self.round == 2 and not np.isnan(confidence).all() else None
        pp = apply_dummy_rule(texts, seq_len, conf, min_frames=self.pp_min_frames,
                              min_confidence=self.pp_min_confidence)
        preds = pd.DataFrame({
            "sequence_id": self.table["sequence_id"].to_numpy(),
            "phrase": self.table["phrase"].astype(str).to_numpy(),
            "prediction": texts,
            "seq_len": seq_len,
            "confidence": confidence,
            "prediction_pp": pp,
        })
        if ctc_texts is not None:
            preds["prediction_ctc"] = ctc_texts
        return preds, losses

    def run(self) -> tuple[pd.DataFrame, dict[str, float]]:
        """Predictions and metrics: score, cer, score_dl, score_pp, val losses, eval_seconds."""
        start = time.time()
        preds, losses = self.predict()
        metrics = score_report(preds["phrase"].tolist(), preds["prediction"].tolist(),
                               preds["prediction_pp"].tolist())
        if "prediction_ctc" in preds:  # the CTC head's greedy decoding (models with ctc_head)
            metrics["score_ctc"] = competition_score(preds["phrase"].tolist(), preds["prediction_ctc"].tolist())
        metrics.update(losses)
        metrics["eval_seconds"] = time.time() - start
        return preds, metrics
