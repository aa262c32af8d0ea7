"""SpeechTransformerDecoder: sizes, position rule, masking invariances, cached step == full pass."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from aslfs.layers.cached_attention import CachedAttention
from aslfs.layers.decoder_block import DecoderBlock
from aslfs.models.decoder import SpeechTransformerDecoder, decoder_position_ids, sinusoidal_position_table
from aslfs.vocab import END_ID, MASK_ID, PAD_ID, START_ID


def _np(x):
    return x.numpy() if isinstance(x, keras.Variable) else np.asarray(ops.convert_to_numpy(x))


def small_decoder(dim=32, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    decoder = SpeechTransformerDecoder(dim, num_heads=4, intermediate_dim=64, **kwargs)
    decoder.build()
    # Larger random weights than the N(0, 0.02) init so that every input visibly changes the logits.
    rng = np.random.default_rng(seed)
    for w in decoder.trainable_weights:
        if len(w.shape) == 2 and "embeddings" not in w.path:
            w.assign(rng.normal(0.0, 1.0 / math.sqrt(w.shape[0]), w.shape).astype("float32"))
    return decoder


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("dim, expected", [(144, 650_464), (208, 1_152_096)])
def test_parameter_counts_match_the_reference(dim, expected):
    decoder = SpeechTransformerDecoder(dim)
    decoder.build()
    assert _count(decoder.trainable_weights) == expected
    # The frozen sinusoidal table is the only non-trainable weight: (1024 + 2) x D.
    assert [w.name for w in decoder.non_trainable_weights] == ["position_table"]
    assert _count(decoder.non_trainable_weights) == 1026 * dim
    assert decoder.head_dim == dim // 4


def test_position_table_golden_values():
    table = sinusoidal_position_table(1026, 8, pad_id=59)
    assert table.shape == (1026, 8)
    half = 4
    # w_i = exp(-i ln(10000) / (half - 1)): w_0 = 1, w_3 = 1e-4 (the half - 1 denominator).
    np.testing.assert_allclose(table[1], [math.sin(1), math.sin(10000 ** (-1 / 3)), math.sin(10000 ** (-2 / 3)),
                                          math.sin(1e-4), math.cos(1), math.cos(10000 ** (-1 / 3)),
                                          math.cos(10000 ** (-2 / 3)), math.cos(1e-4)], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(table[60, 0], math.sin(60.0), atol=1e-6)
    np.testing.assert_allclose(table[60, half], math.cos(60.0), atol=1e-6)
    assert not table[59].any()
    assert table[0, half:].tolist() == [1.0] * half  # cos(0)
    decoder = small_decoder()
    np.testing.assert_array_equal(_np(decoder.position_table), sinusoidal_position_table(1026, 32, 59))


def test_position_ids_start_at_60_and_pad_maps_to_the_zero_row():
    ids = np.array([[START_ID, 5, PAD_ID, 7, MASK_ID], [START_ID, PAD_ID, PAD_ID, END_ID, PAD_ID]], np.int32)
    np.testing.assert_array_equal(_np(decoder_position_ids(ids)), [[60, 61, 59, 62, 63], [60, 59, 59, 61, 59]])
    decoder = small_decoder()
    # pad token: zero embedding row (scaled) + zero position row -> exactly zero input vector
    x = _np(decoder.embed(np.array([[PAD_ID, 5]]), decoder_position_ids(np.array([[PAD_ID, 5]])), training=False))
    assert not x[0, 0].any()
    expected = math.sqrt(32) * _np(decoder.token_embedding.embeddings)[5] + sinusoidal_position_table(1026, 32)[60]
    np.testing.assert_allclose(x[0, 1], expected, rtol=1e-5, atol=1e-6)
    assert not _np(decoder.token_embedding.embeddings)[PAD_ID].any()


def test_pad_embedding_row_gets_no_gradient():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient check written with tf.GradientTape")
    decoder = small_decoder()
    ids = np.array([[START_ID, 3, PAD_ID, PAD_ID], [START_ID, PAD_ID, 4, 8]], np.int32)
    enc = np.random.default_rng(0).normal(size=(2, 5, 32)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(decoder(ids, enc, training=False)))
    grad = tape.gradient(loss, decoder.token_embedding.embeddings)
    grad = tf.convert_to_tensor(grad).numpy()
    assert not grad[PAD_ID].any()
    assert np.abs(grad[3]).sum() > 0 and np.abs(grad[START_ID]).sum() > 0


def test_causality():
    decoder = small_decoder()
    rng = np.random.default_rng(1)
    enc = rng.normal(size=(2, 7, 32)).astype("float32")
    ids = np.array([[START_ID, 4, 9, 12, 3, 8], [START_ID, 1, 1, 2, 30, 5]], np.int32)
    changed = ids.copy()
    changed[:, 3:] = [[40, 41, 42], [50, PAD_ID, 52]]
    a, b = _np(decoder(ids, enc)), _np(decoder(changed, enc))
    np.testing.assert_allclose(a[:, :3], b[:, :3], rtol=1e-5, atol=1e-5)
    assert np.abs(a[:, 3:] - b[:, 3:]).max() > 1e-2


@pytest.mark.parametrize("garbage", [1e4, np.nan])
def test_encoder_padding_invariance(garbage):
    decoder = small_decoder()
    rng = np.random.default_rng(2)
    enc = rng.normal(size=(2, 6, 32)).astype("float32")
    ids = np.array([[START_ID, 4, 9, 12], [START_ID, 1, 1, 2]], np.int32)
    reference = _np(decoder(ids, enc, np.ones((2, 6), bool)))
    padded = np.concatenate([enc, np.full((2, 5, 32), garbage, np.float32)], axis=1)
    mask = np.concatenate([np.ones((2, 6), bool), np.zeros((2, 5), bool)], axis=1)
    np.testing.assert_allclose(_np(decoder(ids, padded, mask)), reference, rtol=1e-5, atol=1e-5)
    # the mask matters: without it the garbage changes (or poisons) the logits
    if np.isfinite(garbage):
        assert np.abs(_np(decoder(ids, padded)) - reference).max() > 1e-2


def test_cached_steps_equal_the_full_pass():
    decoder = small_decoder(dim=48, seed=3)
    rng = np.random.default_rng(3)
    enc = rng.normal(size=(3, 9, 48)).astype("float32")
    mask = np.ones((3, 9), bool)
    mask[0, 4:] = False
    mask[2, 7:] = False
    # includes pads and the mask token inside the prefix: positions must follow the running non-pad count
    ids = np.array(
        [
            [START_ID, 4, 9, 12, 3, END_ID, PAD_ID],
            [START_ID, PAD_ID, 7, MASK_ID, 2, PAD_ID, 6],
            [START_ID, 0, 0, 0, 0, 0, 0],
        ],
        np.int32,
    )
    full = _np(decoder(ids, enc, mask))
    positions = decoder_position_ids(ids)
    cross = decoder.precompute_cross_cache(enc, mask)
    assert len(cross) == 2 and [_np(x).shape for x in cross[0]] == [(3, 4, 9, 12)] * 2
    cache = decoder.init_self_cache(3, 10)
    assert len(cache) == 2 and [_np(x).shape for x in cache[1]] == [(3, 4, 10, 12)] * 2
    for k in range(ids.shape[1]):
        logits, cache = decoder.step(ids[:, k : k + 1], k, cache, cross, mask, position_ids=positions[:, k : k + 1])
        np.testing.assert_allclose(_np(logits), full[:, k], rtol=1e-5, atol=1e-5)
    # the default position of step() (no pads before) is pad + 1 + k
    cache = decoder.init_self_cache(1, 4)
    cross1 = decoder.precompute_cross_cache(enc[2:], mask[2:])
    for k in range(4):
        logits, cache = decoder.step(ids[2:, k : k + 1], k, cache, cross1, mask[2:])
        np.testing.assert_allclose(_np(logits), full[2:, k], rtol=1e-5, atol=1e-5)


def test_mixed_precision_cached_steps_match_the_full_pass():
    keras.utils.set_random_seed(6)
    decoder = SpeechTransformerDecoder(32, num_heads=4, intermediate_dim=64, dtype="mixed_float16")
    ids = np.array([[START_ID, 4, 9, PAD_ID, 3]], np.int32)
    enc = np.random.default_rng(6).normal(size=(1, 6, 32)).astype("float32")
    full = decoder(ids, enc)
    assert keras.backend.standardize_dtype(full.dtype) == "float16"
    assert keras.backend.standardize_dtype(decoder.position_table.dtype) == "float32"
    cross = decoder.precompute_cross_cache(enc)
    cache = decoder.init_self_cache(1, 5)
    assert keras.backend.standardize_dtype(cache[0][0].dtype) == "float16"
    positions = decoder_position_ids(ids)
    for k in range(5):
        logits, cache = decoder.step(ids[:, k : k + 1], k, cache, cross, position_ids=positions[:, k : k + 1])
        np.testing.assert_allclose(_np(logits).astype(np.float32), _np(full)[:, k].astype(np.float32), atol=2e-2)


def test_dropout_only_in_training():
    decoder = small_decoder()
    ids = np.array([[START_ID, 4, 9, 12]], np.int32)
    enc = np.random.default_rng(4).normal(size=(1, 5, 32)).astype("float32")
    a, b = _np(decoder(ids, enc, training=False)), _np(decoder(ids, enc))
    np.testing.assert_array_equal(a, b)
    assert np.abs(_np(decoder(ids, enc, training=True)) - a).max() > 1e-3


def test_config_round_trip_and_serialization():
    decoder = small_decoder(dim=48, max_positions=64, dropout=0.05)
    config = decoder.get_config()
    for key, value in dict(hidden_dim=48, num_layers=2, num_heads=4, intermediate_dim=64, vocab_size=63,
                           dropout=0.05, attention_dropout=0.2, activation_dropout=0.1, max_positions=64,
                           pad_id=59).items():
        assert config[key] == value
    clone = SpeechTransformerDecoder.from_config(config)
    clone.build()
    assert clone.get_config() == config
    clone.set_weights(decoder.get_weights())
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(decoder))
    assert isinstance(restored, SpeechTransformerDecoder)
    ids = np.array([[START_ID, 4, 9]], np.int32)
    enc = np.random.default_rng(5).normal(size=(1, 5, 48)).astype("float32")
    np.testing.assert_allclose(_np(clone(ids, enc)), _np(decoder(ids, enc)), rtol=1e-6, atol=1e-6)
    for layer in (CachedAttention(32, 4), DecoderBlock(32, 4, 64)):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_symbolic_call_in_a_functional_model():
    decoder = SpeechTransformerDecoder(32, num_heads=4, intermediate_dim=64)
    ids = keras.Input((None,), dtype="int32")
    enc = keras.Input((None, 32))
    mask = keras.Input((None,), dtype="bool")
    model = keras.Model([ids, enc, mask], decoder(ids, enc, mask))
    assert model.output.shape == (None, None, 63)
    out = model([np.full((2, 3), START_ID, np.int32), np.zeros((2, 4, 32), np.float32), np.ones((2, 4), bool)])
    assert _np(out).shape == (2, 3, 63)


def test_validates_its_configuration():
    with pytest.raises(ValueError, match="divisible"):
        SpeechTransformerDecoder(30, num_heads=4)
    with pytest.raises(ValueError, match="pad_id"):
        SpeechTransformerDecoder(32, pad_id=70)
