import numpy as np
import pytest
from keras import ops

from aslfs.layers.convolution_module import ConvolutionModule
from aslfs.layers.masking import attention_mask_from_padding
from aslfs.layers.relative_position_embedding import RelativePositionEmbedding
from aslfs.layers.rotary_embedding import RotaryEmbedding
from aslfs.layers.squeezeformer_block import SqueezeformerBlock


def _count(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


@pytest.mark.parametrize("attention_type, dim, expected", [("relative", 144, 260_640), ("rotary", 208, 491_712)])
def test_block_parameter_counts_match_reference(attention_type, dim, expected):
    block = SqueezeformerBlock(dim, 4, attention_type)
    block.build((None, None, dim))
    assert _count(block) == expected  # docs/reference.md §4.7


def _perturb(layer, shape, seed=0):
    """Build ``layer`` and add noise to every trainable weight, so zero-initialised biases are non-zero (a pointwise
    bias turns zeroed pads into GLU(bias) != 0; that must not reach real frames)."""
    layer.build(shape)
    rng = np.random.default_rng(seed)
    for w in layer.trainable_weights:
        w.assign(w.numpy() + 0.1 * rng.normal(size=w.shape).astype("float32"))


def _padded(valid, total, rng):
    x = np.concatenate([valid, 1e3 * rng.normal(size=(valid.shape[0], total - valid.shape[1], valid.shape[2]))], 1)
    mask = np.arange(total)[None, :] < valid.shape[1]
    return x.astype("float32"), np.repeat(mask, valid.shape[0], axis=0)


def test_convolution_module_zeroes_pads_and_ignores_padding_length():
    rng = np.random.default_rng(0)
    conv = ConvolutionModule(8, kernel_size=7, dropout=0.0)
    _perturb(conv, (None, None, 8))
    valid = rng.normal(size=(2, 5, 8)).astype("float32")
    inputs = [_padded(valid, total, rng) for total in (5, 9, 16)]
    for training in (False, True):  # inference first: training calls update the moving statistics
        outs = []
        for x, mask in inputs:
            y = ops.convert_to_numpy(conv(x, padding_mask=mask, training=training))
            assert np.all(y[:, 5:] == 0.0)
            outs.append(y[:, :5])
        for y in outs[1:]:
            np.testing.assert_allclose(y, outs[0], atol=1e-5)


@pytest.mark.parametrize("attention_type", ["relative", "rotary"])
def test_block_valid_frames_ignore_padding(attention_type):
    rng = np.random.default_rng(1)
    block = SqueezeformerBlock(16, 4, attention_type, conv_kernel_size=5, dropout=0.0, attention_dropout=0.0)
    _perturb(block, (None, None, 16))
    valid = rng.normal(size=(2, 6, 16)).astype("float32")
    results = {}
    inputs = [_padded(valid, total, rng) for total in (6, 13)]
    for training in (False, True):  # inference first: training calls update the moving statistics
        for x, mask in inputs:
            total = x.shape[1]
            pos = (RelativePositionEmbedding(16) if attention_type == "relative" else RotaryEmbedding(4, 32))(x)
            y = block(x, pos, padding_mask=mask, attention_mask=attention_mask_from_padding(mask), training=training)
            results[total, training] = ops.convert_to_numpy(y)[:, :6]
    for training in (True, False):
        np.testing.assert_allclose(results[6, training], results[13, training], atol=1e-5)


def test_block_config_round_trip():
    block = SqueezeformerBlock(16, 4, "relative", conv_kernel_size=5)
    assert SqueezeformerBlock.from_config(block.get_config()).get_config() == block.get_config()
    with pytest.raises(ValueError):
        SqueezeformerBlock(16, 4, "absolute")
