"""Import of 1st-place reference checkpoints: parity with outputs of the reference code, and bad input.

The fixtures were written by ``scripts/reference_parity.py --small --sequences 12 --write-fixture`` running the
reference code (cfg_1 / cfg_2 at 2 blocks, D = 32, perturbed random weights and BatchNorm statistics) on a padded batch
of mixed lengths; the round-1 run also wrote ``reference_round1_small_ddp.pth`` (``--write-ddp-pth``).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from aslfs.errors import AslfsError, DataError
from aslfs.interop import reference_checkpoint as rc

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = {"hidden_dim": 32, "num_layers": 2, "mask_before_depthwise": False}


def _fixture(round_):
    with np.load(FIXTURES / f"reference_round{round_}_small.npz") as data:
        state = {k[len("state/"):]: data[k] for k in data.files if k.startswith("state/")}
        reference = {k[len("reference/"):]: data[k] for k in data.files if k.startswith("reference/")}
        return state, reference, data["input/landmarks"], data["input/padding_mask"]


@pytest.mark.parametrize("round_", [1, 2])
def test_encoder_and_confidence_match_the_reference(round_):
    state, reference, x, mask = _fixture(round_)
    assert mask.sum(axis=1).min() < mask.shape[1]  # the batch really is padded
    model = rc.import_reference_state_dict(state, f"kaggle-1st-round{round_}", **SMALL)
    encoded, confidence = model.encode(x, padding_mask=mask, training=False)
    assert np.abs(np.asarray(encoded) - reference["encoder"])[mask].max() <= 1e-4
    if round_ == 2:
        assert np.abs(np.asarray(confidence) - reference["confidence"]).max() <= 1e-4
    else:
        assert confidence is None


def test_default_depthwise_masking_differs_only_on_padded_sequences():
    state, reference, x, mask = _fixture(2)
    model = rc.import_reference_state_dict(state, "kaggle-1st-round2", hidden_dim=32, num_layers=2)
    encoded = np.asarray(model.encode(x, padding_mask=mask, training=False)[0])
    full = mask.all(axis=1)
    assert full.any() and not full.all()
    assert np.abs(encoded[full] - reference["encoder"][full]).max() <= 1e-4
    assert np.abs(encoded - reference["encoder"])[mask & ~full[:, None]].max() > 1e-3


def test_every_reference_tensor_is_used_once_and_every_weight_set():
    state, *_ = _fixture(2)
    config = rc.reference_config("kaggle-1st-round2", **SMALL)
    rows = rc.weight_map(config)
    refs = [r for r, _, _ in rows]
    ours = [o for _, o, _ in rows]
    assert len(set(refs)) == len(refs) and len(set(ours)) == len(ours)
    ignored = {k for k in state if k not in set(refs)}
    assert ignored == {"cos", "sin"} | {k for k in state if k.endswith(".num_batches_tracked")}
    model = rc.import_reference_state_dict(state, config)
    assert {w.path for w in model.weights} == set(ours)


def test_backward_decoder_can_be_dropped():
    state, *_ = _fixture(2)
    state = {k: v for k, v in state.items() if not k.startswith("decoder2.")}
    with pytest.raises(DataError, match=r"missing key 'decoder2\..*--no-backward-decoder"):
        rc.import_reference_state_dict(state, "kaggle-1st-round2", **SMALL)
    model = rc.import_reference_state_dict(state, "kaggle-1st-round2", backward_decoder=False, **SMALL)
    assert not [w.path for w in model.weights if w.path.startswith("backward_decoder/")]


def _write_safetensors(path, state):
    header, chunks, offset = {}, [], 0
    for key, value in state.items():
        raw = np.ascontiguousarray(value, dtype=np.float32 if value.dtype.kind == "f" else np.int64).tobytes()
        header[key] = {"dtype": "F32" if value.dtype.kind == "f" else "I64", "shape": list(value.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"".join(chunks))


def test_safetensors_npz_and_module_prefix_read_the_same(tmp_path):
    state, *_ = _fixture(1)
    _write_safetensors(tmp_path / "ck.safetensors", {f"module.{k}": v for k, v in state.items()})
    np.savez(tmp_path / "ck.npz", **state)
    a = rc.strip_module_prefix(rc.load_state_dict_file(tmp_path / "ck.safetensors"))
    b = rc.load_state_dict_file(tmp_path / "ck.npz")
    assert a.keys() == b.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(a[key], b[key])


def test_pth_with_ddp_prefix_imports_and_saves(tmp_path):
    pytest.importorskip("torch")
    out = rc.import_checkpoint(FIXTURES / "reference_round1_small_ddp.pth", "kaggle-1st-round1", tmp_path / "m.keras",
                               **SMALL)
    state, reference, x, mask = _fixture(1)
    import keras

    model = keras.models.load_model(out)
    encoded = np.asarray(model.encode(x, padding_mask=mask, training=False)[0])
    assert np.abs(encoded - reference["encoder"])[mask].max() <= 1e-4


def _bad(tmp_path, state):
    np.savez(tmp_path / "bad.npz", **state)
    return tmp_path / "bad.npz"


@pytest.mark.parametrize("case, pattern", [
    ("missing", r"missing key 'aux_fc.bias'"),
    ("extra", r"unexpected key 'extra.weight'"),
    ("shape", r"key 'aux_fc.weight' has shape \(1, 31\)"),
    ("preset", r"a round 2 checkpoint .*use --preset kaggle-1st-round2"),
    ("blocks", r"2 encoder blocks, but the model has 3"),
    ("integer", r"key 'aux_fc.bias' has dtype int64"),
])
def test_bad_state_dicts_give_one_line_and_write_nothing(tmp_path, case, pattern):
    state, *_ = _fixture(2)
    preset, overrides = "kaggle-1st-round2", dict(SMALL)
    if case == "missing":
        del state["aux_fc.bias"]
    elif case == "extra":
        state["extra.weight"] = np.zeros(3, np.float32)
    elif case == "shape":
        state["aux_fc.weight"] = np.zeros((1, 31), np.float32)
    elif case == "preset":
        preset = "kaggle-1st-round1"
    elif case == "blocks":
        overrides["num_layers"] = 3
    elif case == "integer":
        state["aux_fc.bias"] = np.zeros(1, np.int64)
    out = tmp_path / "out" / "m.keras"
    with pytest.raises(DataError, match=pattern) as info:
        rc.import_checkpoint(_bad(tmp_path, state), preset, out, **overrides)
    assert "\n" not in str(info.value)
    assert not out.exists() and not list(tmp_path.glob("out/*"))


@pytest.mark.parametrize("name, content, pattern", [
    ("ck.npz", b"not a zip", r"not a readable \.npz"),
    ("ck.safetensors", b"\x05\x00\x00\x00\x00\x00\x00\x00{bad", r"not a safetensors file"),
    ("ck.ckpt", b"", r"unknown checkpoint format '\.ckpt'"),
])
def test_unreadable_files(tmp_path, name, content, pattern):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(AslfsError, match=pattern) as info:
        rc.import_checkpoint(tmp_path / name, "kaggle-1st-round1", tmp_path / "m.keras")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "m.keras").exists()


def test_pth_holding_a_non_tensor_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"model": {"a": torch.zeros(1), "b": 3}}, tmp_path / "x.pth")
    with pytest.raises(DataError, match=r"entry 'b' is a int, not a tensor"):
        rc.load_state_dict_file(tmp_path / "x.pth")


def test_wrong_preset_name_and_missing_file(tmp_path):
    with pytest.raises(AslfsError, match="reference checkpoints are"):
        rc.reference_config("demo")
    with pytest.raises(DataError, match="no such checkpoint file"):
        rc.import_checkpoint(tmp_path / "nope.pth", "kaggle-1st-round1", tmp_path / "m.keras")
