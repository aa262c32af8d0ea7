"""Targets: forward labels, shifted decoder input with decoder-input masking, backward labels (docs/reference.md §1.7,
§3.12, §4.9)."""

import numpy as np
import pytest

from aslfs.data.targets import (backward_labels, collate_backward, decoder_input_ids, encode_target,
                                mask_decoder_tokens, shift_right, target_mask)
from aslfs.vocab import CHAR_TO_ID, END_ID, MASK_ID, PAD_ID, START_ID


def ids(s):
    return [CHAR_TO_ID[c] for c in s]


def test_forward_labels_and_shift():
    lab = encode_target("abc")
    assert lab.shape == (33,) and lab.dtype == np.int32
    assert lab.tolist() == ids("abc") + [END_ID] + [PAD_ID] * 29
    assert target_mask(lab).tolist() == [True] * 4 + [False] * 29
    dec = decoder_input_ids(lab)
    assert dec.tolist() == [START_ID] + ids("abc") + [END_ID] + [PAD_ID] * 28
    assert shift_right(np.array([[1, 2, 3], [4, 5, 6]])).tolist() == [[60, 1, 2], [60, 4, 5]]


def test_long_phrase_truncated_to_32_with_end():
    lab = encode_target("a" * 40)
    assert lab.tolist() == ids("a" * 32) + [END_ID]
    assert target_mask(lab).all()


def test_masking_before_shift():
    lab = encode_target("hello")
    # a scripted rng drawing 0 (< p) only at position 32 (last): after shifting the mask falls off the end
    class Rng:
        def random(self, shape):
            u = np.ones(shape)
            u[..., 32] = 0.0
            u[..., 0] = 0.0
            return u

    dec = decoder_input_ids(lab, Rng(), 0.2)
    assert dec[0] == START_ID and dec[1] == MASK_ID and dec[2:].tolist() == lab[1:32].tolist()
    assert lab.tolist() == encode_target("hello").tolist(), "labels stay unmasked"


def test_mask_rate_covers_all_positions():
    rng = np.random.default_rng(0)
    lab = np.tile(encode_target("hi"), (5000, 1))
    m = mask_decoder_tokens(lab, rng, 0.2) == MASK_ID
    assert abs(m.mean() - 0.2) < 0.005
    assert np.allclose(m.mean(0), 0.2, atol=0.03), "characters, end and pads alike"
    assert (mask_decoder_tokens(lab, None, 0.2) == lab).all() and (mask_decoder_tokens(lab, rng, 0.0) == lab).all()


def test_backward_faithful_golden():
    labs = [encode_target("abc"), encode_target("hello")]
    bwd = backward_labels(labs)
    assert bwd.dtype == np.int32 and bwd.shape == (2, 6), "padded to the batch's longest (5 + end)"
    assert bwd[0].tolist() == ids("cba") + [END_ID, 0, 0], "QUIRK: pad 0 (space)"
    assert bwd[1].tolist() == ids("olleh") + [END_ID]
    b, d = collate_backward(labs)
    assert np.array_equal(b, bwd)
    assert d.tolist() == [[START_ID] + ids("cba") + [END_ID, 0], [START_ID] + ids("olleh")]


def test_backward_fixed_pads_59_to_33():
    bwd = backward_labels(np.stack([encode_target("abc"), encode_target("a" * 40)]), pad_fixed=True)
    assert bwd.shape == (2, 33)
    assert bwd[0].tolist() == ids("cba") + [END_ID] + [PAD_ID] * 29
    assert bwd[1].tolist() == ids("a" * 32) + [END_ID]


def test_backward_decoder_masking():
    labs = [encode_target("abcdefghij")] * 2000
    b, d = collate_backward(labs, np.random.default_rng(0), 0.2)
    assert b.shape == (2000, 11) and MASK_ID not in b
    assert d[:, 0].tolist() == [START_ID] * 2000
    assert abs((d[:, 1:] == MASK_ID).mean() - 0.2) < 0.01
    with pytest.raises(ValueError):
        backward_labels([])
