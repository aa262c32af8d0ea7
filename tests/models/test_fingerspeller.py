import keras
import numpy as np
import pytest
from keras import ops

from aslfs.models.fingerspeller import build_model
from aslfs.vocab import PAD_ID, START_ID

NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, decoder_dropout=0.0, decoder_attention_dropout=0.0,
                  decoder_activation_dropout=0.0)


def _count(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


def test_parameter_counts_equal_the_reference():
    r1 = build_model("kaggle-1st-round1")
    assert r1.parameter_counts() == {"encoder": 1_864_576, "decoder": 650_464, "total": 2_515_040,
                                     "non_trainable": 149_824}
    r2 = build_model("kaggle-1st-round2")
    counts = r2.parameter_counts()
    assert counts["total"] == 9_736_305
    assert counts["encoder"] == 547_936 + 14 * 491_712
    assert counts["decoder"] == counts["backward_decoder"] == 1_152_096
    assert counts["confidence_head"] == 209
    # Non-trainable: BN moving statistics + the two frozen decoder position tables (the rotary table is a constant,
    # not a weight; the reference's cos/sin buffers are not counted as parameters either).
    bn_stats = 2 * (5 * 32 + 208 + 4 * 52) + 14 * 2 * 208
    assert counts["non_trainable"] == bn_stats + 2 * 1026 * 208
    assert build_model("kaggle-1st-round2", backward_decoder=False).parameter_counts()["total"] == 8_584_209
    assert r2.trainable_weights and all(w.trainable for w in r2.trainable_weights)


def _inputs(rng, lengths, total, garbage=True):
    batch = len(lengths)
    landmarks = rng.normal(size=(batch, max(lengths), 130, 3)).astype("float32")
    landmarks[:, :, 40:61][rng.random((batch, max(lengths))) < 0.3] = 0.0  # missing left hand in some frames
    padded = (1e4 * rng.normal(size=(batch, total, 130, 3))).astype("float32") if garbage \
        else np.zeros((batch, total, 130, 3), "float32")
    mask = np.zeros((batch, total), bool)
    for b, n in enumerate(lengths):
        padded[b, :n] = landmarks[b, :n]
        mask[b, :n] = True
    if garbage:
        padded[0, -1, 0, 0] = np.nan
    return padded, mask


def _greedy(decoder, encoded, mask, steps=8):
    ids = np.full((encoded.shape[0], 1), START_ID, "int32")
    for _ in range(steps):
        logits = ops.convert_to_numpy(decoder(ids, encoded, encoder_padding_mask=mask))
        ids = np.concatenate([ids, logits[:, -1].argmax(-1)[:, None].astype("int32")], axis=1)
    return ids


def _perturb(model, seed=0):
    """Non-zero biases, LN/BN shifts and BN statistics, so masking mistakes cannot hide behind zero initialisers."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "position_table" in w.path:
            continue
        value = w.numpy()
        if "moving_variance" in w.path:
            w.assign(value + rng.uniform(0.5, 1.5, size=w.shape).astype("float32"))
        else:
            w.assign(value + 0.05 * rng.normal(size=w.shape).astype("float32"))


@pytest.mark.parametrize("attention_type, part_extractors, global_extractor",
                         [("relative", False, True), ("rotary", True, True), ("rotary", True, False)])
def test_padding_invariance_in_training_and_inference(attention_type, part_extractors, global_extractor):
    model = build_model("tiny", attention_type=attention_type, part_extractors=part_extractors, ctc_head=True,
                        global_extractor=global_extractor, **NO_DROPOUT)
    _perturb(model)
    lengths = (14, 9)
    batches = [_inputs(np.random.default_rng(1), lengths, total) for total in (20, 37)]
    ids = np.random.default_rng(2).integers(0, 62, size=(2, 33)).astype("int32")
    ids[:, 0] = START_ID
    for training in (False, True):  # inference first: training updates the BN moving statistics
        results = []
        for landmarks, mask in batches:
            encoded, confidence = model.encode(landmarks, mask, training=training)
            encoded = ops.convert_to_numpy(encoded)
            assert np.all(np.isfinite(encoded)) and np.all(encoded[~mask] == 0.0)
            inputs = {"landmarks": landmarks, "padding_mask": mask, "decoder_input_ids": ids,
                      "backward_decoder_input_ids": ids[:, :7]}
            out = {k: ops.convert_to_numpy(v) for k, v in model(inputs, training=training).items()}
            tokens = _greedy(model.decoder, encoded, mask) if not training else None
            results.append((encoded, ops.convert_to_numpy(confidence), out, tokens))
        (enc_a, conf_a, out_a, tok_a), (enc_b, conf_b, out_b, tok_b) = results
        for b, n in enumerate(lengths):
            np.testing.assert_allclose(enc_a[b, :n], enc_b[b, :n], atol=1e-5)
            np.testing.assert_allclose(out_a["ctc_logits"][b, :n], out_b["ctc_logits"][b, :n], atol=1e-4)
        np.testing.assert_allclose(conf_a, conf_b, atol=1e-5)
        for key in ("logits", "backward_logits", "confidence_logit"):
            np.testing.assert_allclose(out_a[key], out_b[key], atol=1e-4)
        if not training:
            np.testing.assert_array_equal(tok_a, tok_b)


def test_unmasked_stem_batchnorm_reproduces_the_reference_dependence_on_padding():
    """Pins the deliberate deviation: the reference's stem BN2d counts pad frames in training-mode statistics."""
    model = build_model("tiny", mask_stem_batchnorm=False, **NO_DROPOUT)
    _perturb(model)
    batches = [_inputs(np.random.default_rng(1), (14, 9), total) for total in (20, 37)]
    infer = [ops.convert_to_numpy(model.encode(x, m)[0]) for x, m in batches]
    np.testing.assert_allclose(infer[0][0, :14], infer[1][0, :14], atol=1e-5)  # inference: moving statistics
    train = [ops.convert_to_numpy(model.encode(x, m, training=True)[0]) for x, m in batches]
    assert np.abs(train[0][0, :14] - train[1][0, :14]).max() > 1e-3


def test_batch_one_without_mask_equals_padded_batch():
    """The TFLite path: one unpadded sequence, no padding mask (part normalisation included)."""
    model = build_model("tiny", **NO_DROPOUT)
    _perturb(model)
    landmarks, mask = _inputs(np.random.default_rng(3), (11,), 24)
    padded, _ = model.encode(landmarks, mask)
    single, confidence = model.encode(landmarks[:, :11], None)
    np.testing.assert_allclose(ops.convert_to_numpy(single)[0], ops.convert_to_numpy(padded)[0, :11], atol=1e-5)
    assert confidence.shape == (1, 1)


def test_keras_save_and_load_round_trip(tmp_path):
    model = build_model("tiny", ctc_head=True)
    _perturb(model)
    landmarks, mask = _inputs(np.random.default_rng(4), (9, 6), 12)
    inputs = {"landmarks": landmarks, "padding_mask": mask,
              "decoder_input_ids": np.full((2, 33), PAD_ID, "int32"),
              "backward_decoder_input_ids": np.full((2, 5), PAD_ID, "int32")}
    inputs["decoder_input_ids"][:, :4] = [START_ID, 5, 6, 7]
    expected = model(inputs)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.model_config == model.model_config and type(loaded) is type(model)
    got = loaded(inputs)
    assert set(got) == {"logits", "backward_logits", "confidence_logit", "ctc_logits"}
    for key, value in expected.items():
        np.testing.assert_array_equal(ops.convert_to_numpy(got[key]), ops.convert_to_numpy(value))
    assert loaded.ctc_blank_id == 63 and got["ctc_logits"].shape == (2, 12, 64)


def test_output_shapes_and_optional_parts():
    model = build_model("tiny", backward_decoder=False, confidence_head=False, attention_type="relative")
    assert set(model.input) == {"landmarks", "padding_mask", "decoder_input_ids"}
    out = model({"landmarks": np.zeros((3, 10, 130, 3), "float32"), "padding_mask": np.ones((3, 10), bool),
                 "decoder_input_ids": np.full((3, 33), START_ID, "int32")})
    assert set(out) == {"logits"} and out["logits"].shape == (3, 33, 63)
    assert model.encode(np.zeros((1, 5, 130, 3), "float32"))[1] is None
    with pytest.raises(ValueError):
        model.ctc_logits(np.zeros((1, 5, 32), "float32"))


def test_without_global_extractor_only_the_part_extractors_remain():
    full = build_model("tiny")
    parts_only = build_model("tiny", global_extractor=False)
    names = {w.path.split("/")[1] for w in parts_only.encoder.weights}
    assert "feature_extractor" not in names and "right_hand_feature_extractor" in names
    # the all-landmark extractor of tiny (D = 32, 8 stem channels, 130 landmarks → 65 columns): conv 3·3·3·8 (no
    # bias), stem BN γ/β 2·8, projection 65·8·32 (no bias), BN1d γ/β 2·32
    extractor = 3 * 3 * 3 * 8 + 2 * 8 + 65 * 8 * 32 + 2 * 32
    assert _trainable(full) - _trainable(parts_only) == extractor
    with pytest.raises(Exception, match="needs part_extractors"):
        build_model("tiny", global_extractor=False, part_extractors=False)


def _trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))
