"""The training wrapper: a Keras model around a :class:`~aslfs.models.fingerspeller.FingerSpeller` that owns the loss.

``TrainingModel(net, loss_config)`` calls ``net`` unchanged and overrides ``compute_loss`` with
:func:`aslfs.training.losses.training_losses` (it needs the padding mask from ``x`` for the CTC lengths, which a
per-output ``compile(loss=...)`` cannot see). Each loss term is tracked by a ``Mean`` metric, so ``fit`` logs
``loss`` plus ``ce`` / ``ce_bwd`` / ``bce`` / ``ctc``. The exported model is ``net`` itself (``wrapper.net``).
"""

from __future__ import annotations

import keras
from keras import ops

from aslfs.training import distribution
from aslfs.training.losses import LossConfig, training_losses

LOSS_TERMS = ("ce", "ce_bwd", "bce", "ctc")


def loss_terms(net, loss_config: LossConfig) -> tuple[str, ...]:
    """The loss terms a model trains with: ``ce`` always, ``ce_bwd`` / ``bce`` / ``ctc`` when the model has the
    backward decoder / the confidence head / a CTC head with a non-zero CTC weight."""
    cfg = net.model_config
    terms = ["ce"]
    if cfg.backward_decoder:
        terms.append("ce_bwd")
    if cfg.confidence_head:
        terms.append("bce")
    if cfg.ctc_head and loss_config.ctc_weight > 0:
        terms.append("ctc")
    return tuple(terms)


@keras.saving.register_keras_serializable(package="aslfs")
class TrainingModel(keras.Model):
    """``net`` plus the training loss.

    Args:
        net: the ``FingerSpeller`` (already built: it is functional).
        loss_config: :class:`LossConfig` or its dict.
        **kwargs: passed to ``keras.Model``.

    Call: ``x`` dict as ``net``; returns ``net``'s outputs dict.
    """

    def __init__(self, net, loss_config: LossConfig | dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(loss_config, dict):
            loss_config = LossConfig(**loss_config)
        self.net = net
        self.loss_config = loss_config or LossConfig()
        self.loss_terms = loss_terms(net, self.loss_config)
        self.term_trackers = [keras.metrics.Mean(name=name) for name in self.loss_terms]
        self.built = True  # net is functional and built

    def call(self, inputs, training=False):
        return self.net(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = training_losses(y, y_pred, x["padding_mask"], self.loss_config)
        for name, tracker in zip(self.loss_terms, self.term_trackers):
            tracker.update_state(terms[name])
        total = terms["loss"]
        for extra in self.losses:  # layer regularisation losses, if any
            total = total + ops.cast(extra, "float32")
        return distribution.scale_loss(total)  # a replica's share of the global mean (TF data parallel), else as is

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # TensorFlow under a strategy (only that trainer calls this): build from one replica's shard of the first
        # batch, not Keras' mean of the shards, which fails on the boolean padding mask (aslfs.training.distribution)
        if iterator is not None and getattr(self, "_distribute_strategy", None) is not None:
            data_batch, iterator = distribution.first_local_batch(self._distribute_strategy, iterator), None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def get_config(self):
        return {"net": keras.saving.serialize_keras_object(self.net), "loss_config": self.loss_config.to_dict(),
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        net = keras.saving.deserialize_keras_object(config.pop("net"))
        return cls(net, **config)
