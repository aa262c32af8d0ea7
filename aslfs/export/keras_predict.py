"""The Keras reference of the submission: the ensemble's predictions through the data pipeline's NumPy functions.

:func:`keras_ensemble_predict` is independent of the exported graph's preprocessing (NumPy normalisation and resize,
batched and padded as in training) but runs the same members and the same decoding
(:func:`aslfs.decoding.greedy_attention_decode`), on any Keras backend. The parity tests compare the TFLite file with it, and it
evaluates Keras checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from keras import ops

from aslfs.data.normalize import normalize_np
from aslfs.export.graph import EnsembleGraph
from aslfs.landmarks import NUM_LANDMARKS
from aslfs.vocab import END_ID, MAX_TARGET_LEN, decode


def keras_ensemble_predict(
    members: Sequence,
    sequences: Sequence[np.ndarray],
    batch_size: int = 16,
    max_len: int | None = None,
    resize_mode: str = "linear",
    min_frames: int = 15,
    confidence_threshold: float = 0.15,
    max_steps: int = MAX_TARGET_LEN,
    pad: bool = True,
    head: str = "attention",
) -> dict[str, list]:
    """The Keras ensemble's greedy predictions for raw sequences, through the data pipeline's NumPy functions.

    Each sequence is normalised with :func:`aslfs.data.normalize.normalize_np`, resized above ``max_len`` with
    :func:`aslfs.data.sample.resize_time`, then (``pad=True``) zero-padded to ``max_len`` in batches with a padding
    mask, as in training — or (``pad=False``) run one by one at its own length, like the TFLite graph. The members'
    encoders and :func:`aslfs.decoding.greedy_attention_decode` do the rest (``head="ctc"``: the members' averaged CTC
    log-probabilities and :func:`aslfs.decoding.ctc_greedy_decode`; ``logits`` are then one-hot rows).

    Returns:
        ``{"raw": [str], "phrase": [str] (after the dummy rule), "confidence": [float], "logits": [(L, vocab)]}``.
    """
    from aslfs.decoding import apply_dummy_rule

    graph = EnsembleGraph(members, max_len=max_len, resize_mode=resize_mode, max_steps=max_steps, head=head)
    prepared = _prepare(sequences, graph.max_len, resize_mode)
    groups = [[i] for i in range(len(prepared))] if not pad else [
        list(range(i, min(i + batch_size, len(prepared)))) for i in range(0, len(prepared), batch_size)
    ]
    raw = [""] * len(prepared)
    confidence = [1.0] * len(prepared)
    logits: list = [None] * len(prepared)
    for group in groups:
        width = graph.max_len if pad else len(prepared[group[0]])
        batch = np.zeros((len(group), width, NUM_LANDMARKS, 3), np.float32)
        mask = np.zeros((len(group), width), bool)
        for row, i in enumerate(group):
            batch[row, : len(prepared[i])] = prepared[i]
            mask[row, : len(prepared[i])] = True
        decode_batch = _decode_ctc if head == "ctc" else _decode_attention
        results = decode_batch(graph, batch, mask, max_steps)
        for i, (text, conf, rows) in zip(group, results):
            raw[i], confidence[i], logits[i] = text, conf, rows
    seq_lens = [len(f) for f in sequences]
    phrases = apply_dummy_rule(raw, seq_lens, confidence, min_frames, confidence_threshold)
    return {"raw": raw, "phrase": phrases, "confidence": confidence, "logits": logits}


def _prepare(sequences: Sequence[np.ndarray], length: int, resize_mode: str) -> list[np.ndarray]:
    """Normalise each raw sequence (NumPy) and resize those longer than ``length`` frames."""
    from aslfs.data.sample import resize_time

    prepared = []
    for frames in sequences:
        x = normalize_np(frames)
        if len(x) > length:
            x = resize_time(x, length, resize_mode).astype(np.float32)
        prepared.append(x)
    return prepared


def _encode(graph: EnsembleGraph, batch: np.ndarray, mask: np.ndarray) -> tuple[list, np.ndarray]:
    """Every member's encoder outputs and the ensemble confidence (sigmoid of the mean logit; 1 without heads)."""
    outputs, conf_logits = [], []
    for member in graph.members:
        encoder_output, conf = member.encode(batch, mask, training=False)
        outputs.append(encoder_output)
        if conf is not None:
            conf_logits.append(np.asarray(ops.convert_to_numpy(conf), np.float32).reshape(len(batch)))
    conf = 1.0 / (1.0 + np.exp(-np.mean(conf_logits, axis=0))) if conf_logits else np.ones(len(batch))
    return outputs, conf


def _decode_attention(graph: EnsembleGraph, batch, mask, max_steps: int) -> list[tuple[str, float, np.ndarray]]:
    """``(raw phrase, confidence, step logits up to the first end id)`` per row: greedy ensemble decoding."""
    from aslfs.decoding import greedy_attention_decode

    outputs, conf = _encode(graph, batch, mask)
    tokens, step_logits = greedy_attention_decode(graph.decoders, outputs, [mask] * len(outputs), max_steps=max_steps)
    tokens = np.asarray(ops.convert_to_numpy(tokens))
    step_logits = np.asarray(ops.convert_to_numpy(step_logits))
    results = []
    for row in range(len(batch)):
        ends = np.flatnonzero(tokens[row] == END_ID)
        rows = min(int(ends[0]) if ends.size else max_steps, graph.max_rows)
        results.append((decode(tokens[row, :rows]), float(conf[row]), step_logits[row, :rows]))
    return results


def _decode_ctc(graph: EnsembleGraph, batch, mask, max_steps: int) -> list[tuple[str, float, np.ndarray]]:
    """``(raw phrase, confidence, one-hot rows)`` per row: greedy CTC decoding of the averaged log-probabilities."""
    from aslfs.decoding import ctc_greedy_decode

    outputs, conf = _encode(graph, batch, mask)
    log_probs = [np.asarray(ops.convert_to_numpy(ops.log_softmax(m.ctc_logits(e), axis=-1)), np.float32)
                 for m, e in zip(graph.members, outputs)]
    ids = ctc_greedy_decode(np.mean(log_probs, axis=0), mask, blank_id=graph.vocab_size)
    results = []
    for row in range(len(batch)):
        kept = ids[row][: graph.max_rows]
        one_hot = np.eye(graph.vocab_size, dtype=np.float32)[np.asarray(kept, dtype=np.int64)]
        results.append((decode(kept), float(conf[row]), one_hot))
    return results
