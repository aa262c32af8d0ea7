"""Length bucketing is exact: a batch padded to its bucket gives the loss of the same batch padded to max_len."""

import numpy as np
import pytest
from keras import ops

from aslfs.data.store import SequenceStore
from aslfs.models.config import get_config
from aslfs.models.fingerspeller import FingerSpeller
from aslfs.training.loader import SequenceBatches
from aslfs.training.losses import LossConfig, training_losses
from tests.training.fixtures import make_store

NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, decoder_dropout=0.0, decoder_attention_dropout=0.0,
                  decoder_activation_dropout=0.0)


def test_bucket_padding_equals_max_len_padding(tmp_path):
    store_dir, _ = make_store(tmp_path, n=6, frames=(10, 30))
    store = SequenceStore(store_dir)
    df = store.index.copy()
    df["store_pos"] = np.arange(len(df))
    df["is_sup"] = False
    df["score"] = np.float32(0.7)
    net = FingerSpeller(get_config("tiny", **NO_DROPOUT))  # max_len 64, masked stem BatchNorm
    ds_bucket = SequenceBatches(store, df, 3, training=False, round=2, buckets=(16, 32), max_len=64, workers=0)
    ds_full = SequenceBatches(store, df, 3, training=False, round=2, buckets=None, max_len=64, workers=0)
    rows = ds_bucket.rows(0)  # the 3 shortest sequences (10–30 frames)
    xb, yb = ds_bucket.batch(0)
    xf, yf = ds_full.collate(ds_full.samples(rows, None), None)
    assert xb["landmarks"].shape[1] in (16, 32) and xf["landmarks"].shape[1] == 64
    for training in (False, True):
        lb = training_losses(yb, net(xb, training=training), xb["padding_mask"], LossConfig())
        lf = training_losses(yf, net(xf, training=training), xf["padding_mask"], LossConfig())
        for k in ("ce", "ce_bwd", "bce", "loss"):
            assert float(ops.convert_to_numpy(lb[k])) == pytest.approx(float(ops.convert_to_numpy(lf[k])),
                                                                       rel=1e-5, abs=1e-6), (training, k)


def test_backward_padding_to_33_keeps_the_reference_loss(tmp_path):
    """The reference's backward labels stop at the batch's longest target; padded to 33 and scored only up to that
    length, the loss is the same (the backward decoder is causal)."""
    from aslfs.data.targets import collate_backward
    from aslfs.training.losses import sequence_cross_entropy

    store_dir, _ = make_store(tmp_path, n=4, frames=(10, 30), phrases=("ab", "hello world", "x", "42 elm"))
    store = SequenceStore(store_dir)
    df = store.index.copy()
    df["store_pos"] = np.arange(len(df))
    df["is_sup"] = False
    df["score"] = np.float32(1.0)
    net = FingerSpeller(get_config("tiny", **NO_DROPOUT))
    ds = SequenceBatches(store, df, 4, training=False, round=2, buckets=None, max_len=64, workers=0)
    x, y = ds.batch(0)
    ref_labels, ref_inputs = collate_backward(y["token_ids"])  # the reference: batch-length arrays
    length = ref_labels.shape[1]
    assert length == len("hello world") + 1 < 33
    np.testing.assert_array_equal(y["backward_token_ids"][:, :length], ref_labels)
    ours = training_losses(y, net(x, training=False), x["padding_mask"], LossConfig())["ce_bwd"]
    x_ref = {**x, "backward_decoder_input_ids": ref_inputs}
    ref = sequence_cross_entropy(ref_labels, net(x_ref, training=False)["backward_logits"])
    assert float(ops.convert_to_numpy(ours)) == pytest.approx(float(ops.convert_to_numpy(ref)), rel=1e-5)
