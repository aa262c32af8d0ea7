"""The assembled fingerspelling model: encoder, heads and decoder(s) as one functional Keras model."""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
from keras import ops

from aslfs.landmarks import NUM_LANDMARKS
from aslfs.models.config import ModelConfig
from aslfs.models.encoder import SqueezeformerEncoder


def _decoder(config: ModelConfig, name: str, dtype):
    from aslfs.models.decoder import SpeechTransformerDecoder

    return SpeechTransformerDecoder(
        config.hidden_dim, num_layers=config.decoder_layers, num_heads=config.decoder_heads,
        intermediate_dim=config.decoder_intermediate_dim, vocab_size=config.vocab_size, dropout=config.decoder_dropout,
        attention_dropout=config.decoder_attention_dropout, activation_dropout=config.decoder_activation_dropout,
        max_positions=config.decoder_max_positions, pad_id=config.pad_id, name=name, dtype=dtype,
    )


@keras.saving.register_keras_serializable(package="aslfs")
class FingerSpeller(keras.Model):
    """Landmarks → phrase logits: Squeezeformer encoder, Speech2Text decoder(s), optional heads (docs/reference.md §4).

    A functional model built from a ``ModelConfig`` (``get_config()`` / ``from_config`` round-trip it, so it saves
    to ``.keras``). With dropout 0 (or in inference), outputs at real frames and the decoder logits never depend on
    padding.

    Inputs (dict):
        ``landmarks``: float (B, T, 130, 3), globally normalised (docs/reference.md §2.1); T ≤ ``max_len`` for rotary.
        ``padding_mask``: bool (B, T), True = real frame.
        ``decoder_input_ids``: int (B, L), the teacher-forcing input (start id 60, then the target shifted right).
        ``backward_decoder_input_ids``: int (B, L'), only with ``backward_decoder``.

    Outputs (dict):
        ``logits``: (B, L, vocab_size) of the forward decoder.
        ``backward_logits``: (B, L', vocab_size), with ``backward_decoder``. The backward decoder reads the encoder
            output and the padding mask flipped along time (pads first, as in the reference).
        ``confidence_logit``: (B, 1), with ``confidence_head``: Dense(1) on the encoder output at frame 0.
        ``ctc_logits``: (B, T, vocab_size + 1), with ``ctc_head``; the blank is the last class
            (``ctc_blank_id`` = vocab_size), so the token ids keep their meaning.

    For decoding and export: ``encode(landmarks, padding_mask=None, training=False)`` → ``(encoder_output,
    confidence_logit or None)``; ``ctc_logits(encoder_output)``; the layers ``encoder``, ``decoder``,
    ``backward_decoder``, ``confidence_head``, ``ctc_head`` (None when disabled).

    Training: ``compute_loss`` is Keras' default (losses given to ``compile``, keyed by output name); the round-2
    loss (docs/reference.md §4.10) can override it in a subclass or be passed to ``compile``.

    Args:
        config: ``ModelConfig`` or a dict of its fields.
        **kwargs: passed to ``keras.Model`` (``name``, ``dtype``, ``trainable``).
    """

    def __init__(self, config: ModelConfig | Mapping, **kwargs):
        if not isinstance(config, ModelConfig):
            config = ModelConfig.from_dict(config)
        dtype = kwargs.pop("dtype", None)

        # === Layers ===
        encoder = SqueezeformerEncoder.from_model_config(config, name="encoder", dtype=dtype)
        decoder = _decoder(config, "decoder", dtype)
        backward_decoder = _decoder(config, "backward_decoder", dtype) if config.backward_decoder else None
        confidence_head = keras.layers.Dense(1, name="confidence_head", dtype=dtype) \
            if config.confidence_head else None
        ctc_head = keras.layers.Dense(config.ctc_vocab_size, name="ctc_head", dtype=dtype) if config.ctc_head else None

        # === Functional Model ===
        inputs = {
            "landmarks": keras.Input((None, NUM_LANDMARKS, 3), name="landmarks"),
            "padding_mask": keras.Input((None,), dtype="bool", name="padding_mask"),
            "decoder_input_ids": keras.Input((None,), dtype="int32", name="decoder_input_ids"),
        }
        if backward_decoder is not None:
            inputs["backward_decoder_input_ids"] = keras.Input((None,), dtype="int32",
                                                               name="backward_decoder_input_ids")
        padding_mask = inputs["padding_mask"]
        encoded = encoder(inputs["landmarks"], padding_mask=padding_mask)
        outputs = {"logits": decoder(inputs["decoder_input_ids"], encoded, encoder_padding_mask=padding_mask)}
        if backward_decoder is not None:
            outputs["backward_logits"] = backward_decoder(
                inputs["backward_decoder_input_ids"], ops.flip(encoded, axis=1),
                encoder_padding_mask=ops.flip(padding_mask, axis=1))
        if confidence_head is not None:
            outputs["confidence_logit"] = confidence_head(encoded[:, 0])
        if ctc_head is not None:
            outputs["ctc_logits"] = ctc_head(encoded)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.model_config = config
        self.encoder = encoder
        self.decoder = decoder
        self.backward_decoder = backward_decoder
        self.confidence_head = confidence_head
        self.ctc_head = ctc_head

    @property
    def ctc_blank_id(self) -> int:
        """The CTC blank class (the last class of ``ctc_logits``)."""
        return self.model_config.vocab_size

    def encode(self, landmarks, padding_mask=None, training=False):
        """Run the encoder (and the confidence head).

        Args:
            landmarks: float (B, T, 130, 3), globally normalised.
            padding_mask: optional bool (B, T), True = real frame; None = all frames real (batch-1 TFLite path).
            training: bool.

        Returns:
            ``(encoder_output (B, T, D), confidence_logit (B, 1) or None)``.
        """
        encoded = self.encoder(landmarks, padding_mask=padding_mask, training=training)
        confidence = self.confidence_head(encoded[:, 0]) if self.confidence_head is not None else None
        return encoded, confidence

    def ctc_logits(self, encoder_output):
        """CTC head on an encoder output: (B, T, D) → (B, T, vocab_size + 1). Raises if the head is disabled."""
        if self.ctc_head is None:
            raise ValueError("this model has no CTC head (ModelConfig.ctc_head is False)")
        return self.ctc_head(encoder_output)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per component plus ``total`` and ``non_trainable``."""
        def count(weights):
            return int(sum(np.prod(w.shape) for w in weights))

        parts = {"encoder": self.encoder, "decoder": self.decoder, "backward_decoder": self.backward_decoder,
                 "confidence_head": self.confidence_head, "ctc_head": self.ctc_head}
        counts = {name: count(layer.trainable_weights) for name, layer in parts.items() if layer is not None}
        counts["total"] = count(self.trainable_weights)
        counts["non_trainable"] = count(self.non_trainable_weights)
        return counts

    def get_config(self):
        return {"config": self.model_config.to_dict(), "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_model(config: ModelConfig | Mapping | str, **overrides) -> FingerSpeller:
    """A ``FingerSpeller`` from a ``ModelConfig``, a dict of fields, or a preset name (with field ``overrides``)."""
    from aslfs.models.config import get_config

    if isinstance(config, str):
        config = get_config(config, **overrides)
    else:
        if not isinstance(config, ModelConfig):
            config = ModelConfig.from_dict(config)
        if overrides:
            config = config.replace(**overrides)
    return FingerSpeller(config)


def describe_model(config: ModelConfig | str, **overrides) -> str:
    """A text summary of a model: its configuration, trainable parameters per component, and as the last line
    ``trainable parameters: N``. The model is built (weights created) but never run."""
    name = config if isinstance(config, str) else None
    model = build_model(config, **overrides)
    cfg = model.model_config
    counts = model.parameter_counts()
    lines = [f"model: {name or 'custom'}"]
    lines += [f"  {key}: {value}" for key, value in cfg.to_dict().items()]
    lines.append("components (trainable parameters):")
    enc = model.encoder
    for key, value in counts.items():
        if key in ("total", "non_trainable"):
            continue
        lines.append(f"  {key}: {value:,}")
        if key == "encoder":
            extractors = [enc.feature_extractor, *enc.part_feature_extractors]
            lines.append(f"    feature extractors ({len(extractors)}): {sum(_trainable(x) for x in extractors):,}")
            if enc.blocks:
                lines.append(f"    blocks: {len(enc.blocks)} x {_trainable(enc.blocks[0]):,}")
    lines.append(f"non-trainable parameters: {counts['non_trainable']:,}")
    lines.append(f"trainable parameters: {counts['total']}")
    return "\n".join(lines)


def _trainable(layer) -> int:
    return int(sum(np.prod(w.shape) for w in layer.trainable_weights))
