"""Learnable per-channel scale and bias (the Squeezeformer replacement of pre-LayerNorm)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="aslfs")
class ScaleBias(keras.layers.Layer):
    """``x * scale + bias`` with learnable vectors over the last axis, initialised to (1, 0) (docs/reference.md §4.2).

    Both vectors are trainable (they are ``nn.Parameter`` in the reference and count towards its parameter total).

    Args:
        **kwargs: passed to ``keras.layers.Layer``.

    Call arguments:
        inputs: (..., D).

    Returns:
        (..., D).
    """

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        dim = input_shape[-1]
        self.scale = self.add_weight(name="scale", shape=(dim,), initializer="ones", trainable=True)
        self.bias = self.add_weight(name="bias", shape=(dim,), initializer="zeros", trainable=True)
        self.built = True

    def call(self, inputs):
        return inputs * ops.cast(self.scale, inputs.dtype) + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
