"""The encoder (batch 1, dynamic T, no padding mask) converts to TFLite builtins and matches Keras."""

import importlib.util

import keras
import numpy as np
import pytest

from aslfs.models.fingerspeller import build_model

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow" or importlib.util.find_spec("ai_edge_litert")
                                is None, reason="needs the TensorFlow backend and ai_edge_litert")


@pytest.mark.parametrize("attention_type", ["rotary", "relative"])
def test_encoder_converts_to_tflite_builtins(tmp_path, attention_type):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    model = build_model("tiny", attention_type=attention_type, part_extractors=attention_type == "rotary",
                        ctc_head=True)
    rng = np.random.default_rng(0)
    for w in model.weights:
        if "position_table" not in w.path:
            w.assign(w.numpy() + 0.05 * rng.normal(size=w.shape).astype("float32"))

    def encode(landmarks):
        encoded, confidence = model.encode(landmarks, None)
        outputs = {"encoded": encoded, "ctc": model.ctc_logits(encoded)}
        if confidence is not None:
            outputs["confidence"] = confidence
        return outputs

    fn = tf.function(encode, input_signature=[tf.TensorSpec([1, None, 130, 3], tf.float32, name="landmarks")],
                     autograph=False)
    archive = keras.export.ExportArchive()
    archive.add_endpoint(name="serving_default", fn=fn)
    archive.write_out(str(tmp_path / "saved"), verbose=False,
                      options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    runner = Interpreter(model_content=converter.convert()).get_signature_runner()
    for frames in (5, 23, 60):  # one graph, any length (rotary: up to max_len)
        x = rng.normal(size=(1, frames, 130, 3)).astype("float32")
        x[0, :, 40:61] = 0.0  # a missing hand: the per-part normalisation's 0/0 branch
        got, expected = runner(landmarks=x), fn(tf.constant(x))
        assert set(got) == set(expected)
        for key in got:
            np.testing.assert_allclose(got[key], expected[key].numpy(), atol=1e-4)
