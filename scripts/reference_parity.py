"""Numerical parity of aslfs against the 1st-place reference code on the same weights.

Two steps, because the reference needs its own environment (torch, transformers 4.32, timm; Keras 2) and aslfs
needs Keras 3::

    REFPY scripts/reference_parity.py --reference-dir /path/to/checkout --round 2 --seed 0 [--small] \
        --write-fixture out.npz                      # reference side: weights, inputs, reference outputs
    PYTHONPATH=. python scripts/reference_parity.py --compare out.npz [--report report.json]   # aslfs side

It builds the reference ``Net`` of cfg_1 / cfg_2 offline (the hub's Speech2Text config is replaced by its published
values), seeds it, randomises the BatchNorm running statistics (so they are exercised), saves its state dict, imports
it with ``aslfs.interop.reference_checkpoint`` (``mask_before_depthwise=False``, the reference's padding behaviour)
and compares, on one padded batch of mixed lengths: (a) the encoder output on valid frames, (d) the confidence head
(round 2). Decoder logits, greedy strings, losses and gradients are not compared yet.

``--write-fixture`` stores the state dict, the inputs and the reference outputs as one ``.npz`` for the tests.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import tempfile
import types
from pathlib import Path
from unittest import mock

import numpy as np

# Published fields of facebook/s2t-small-librispeech-asr's config.json (the reference overrides the sizes it uses).
S2T_SMALL_LIBRISPEECH = dict(
    vocab_size=10000, d_model=256, encoder_layers=12, encoder_ffn_dim=2048, encoder_attention_heads=4,
    decoder_layers=6, decoder_ffn_dim=2048, decoder_attention_heads=4, activation_function="relu", dropout=0.1,
    attention_dropout=0.1, activation_dropout=0.1, init_std=0.02, encoder_layerdrop=0.0, decoder_layerdrop=0.0,
    scale_embedding=True, max_source_positions=6000, max_target_positions=1024, num_conv_layers=2,
    conv_kernel_sizes=[5, 5], conv_channels=1024, input_feat_per_channel=80, input_channels=1,
    pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)


class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Stand-in modules for imports the model code does not use at run time (torchvision via timm, albumentations
    via the configs' augmentation module)."""

    def __init__(self, prefixes):
        self.prefixes = prefixes

    def find_spec(self, name, path, target=None):
        if any(name == p or name.startswith(p + ".") for p in self.prefixes):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = mock.MagicMock()
        module.__path__, module.__spec__, module.__name__, module.__version__ = [], spec, spec.name, "0.0"
        return module

    def exec_module(self, module):
        pass


def build_reference(reference_dir: Path, round_: int, seed: int, small: bool, workdir: Path):
    import torch
    from transformers.models.speech_to_text import Speech2TextConfig

    sys.meta_path.insert(0, _Stub(["torchvision", "albumentations"]))
    augmentations = types.ModuleType("augmentations")

    def _any(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return mock.MagicMock()
    augmentations.__getattr__ = _any
    sys.modules["augmentations"] = augmentations
    Speech2TextConfig.from_pretrained = classmethod(lambda cls, *a, **k: Speech2TextConfig(**S2T_SMALL_LIBRISPEECH))
    for sub in ("configs", "models", "data", ""):
        sys.path.insert(0, str(reference_dir / sub))
    data = workdir / "datamount" / "train_landmarks_npy"
    data.mkdir(parents=True, exist_ok=True)
    columns = Path(__file__).resolve().parents[1] / "aslfs" / "resources" / "selected_columns_130.json"
    (data / "inference_args.json").write_text(columns.read_text())
    for name in ("character_to_prediction_index.json", "symmetry.csv"):
        if (reference_dir / "datamount" / name).exists():
            (workdir / "datamount" / name).write_bytes((reference_dir / "datamount" / name).read_bytes())
    os.chdir(workdir)
    cfg = importlib.import_module(f"cfg_{round_}").cfg
    if small:
        dim = 32
        cfg.encoder_config.encoder_dim = cfg.encoder_config.input_dim = dim
        cfg.encoder_config.num_layers = 2
        cfg.transformer_config.d_model = dim
    torch.manual_seed(seed)
    net = importlib.import_module(f"mdl_{round_}_pt").Net(cfg)
    generator = torch.Generator().manual_seed(seed + 1)
    for module in net.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return net.eval(), cfg


def make_batch(seed: int, sequences: int, max_len: int = 64):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max_len // 4, max_len + 1, size=sequences)
    lengths[0] = max_len
    x = rng.normal(size=(sequences, max_len, 130, 3)).astype(np.float32)
    mask = np.arange(max_len)[None, :] < lengths[:, None]
    x[~mask] = 0.0
    return x, mask


def run_reference(net, x, mask):
    import torch

    b = x.shape[0]
    batch = {"input": torch.tensor(x), "input_mask": torch.tensor(mask.astype(np.int64)),
             "token_ids": torch.zeros(b, 33, dtype=torch.long), "attention_mask": torch.ones(b, 33, dtype=torch.long),
             "score": torch.ones(b)}
    captured = {}
    handle = net.encoder.register_forward_hook(lambda m, i, o: captured.__setitem__("enc", o.detach().numpy()))
    with torch.no_grad():
        try:
            net(batch)
        except Exception:  # noqa: BLE001 - only the encoder output is needed; later stages may need more fields
            if "enc" not in captured:
                raise
    handle.remove()
    out = {"encoder": captured["enc"]}
    if hasattr(net, "aux_fc"):
        import torch as _t
        with _t.no_grad():
            out["confidence"] = net.aux_fc(_t.tensor(captured["enc"][:, 0])).numpy()
    return out


def compare_fixture(path: Path) -> dict[str, float]:
    """Import the fixture's state dict into aslfs and return the max abs differences to its reference outputs."""
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        state = {k[len("state/"):]: data[k] for k in data.files if k.startswith("state/")}
        reference = {k[len("reference/"):]: data[k] for k in data.files if k.startswith("reference/")}
        x, mask = data["input/landmarks"], data["input/padding_mask"]
    return compare(state, meta["round"], meta["small"], x, mask, reference)


def compare(state, round_, small, x, mask, reference):
    from aslfs.interop.reference_checkpoint import import_reference_state_dict

    overrides = {"mask_before_depthwise": False}
    if small:
        overrides.update(hidden_dim=32, num_layers=2)
    model = import_reference_state_dict(state, f"kaggle-1st-round{round_}", **overrides)
    encoded, confidence = model.encode(x, padding_mask=mask, training=False)
    rows = {"encoder": float(np.abs(np.asarray(encoded) - reference["encoder"])[mask].max())}
    if confidence is not None:
        rows["confidence"] = float(np.abs(np.asarray(confidence) - reference["confidence"]).max())
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-dir", type=Path)
    parser.add_argument("--round", type=int, choices=(1, 2))
    parser.add_argument("--compare", type=Path, help="aslfs side: compare against a fixture written by --write-fixture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequences", type=int, default=50)
    parser.add_argument("--small", action="store_true", help="2 blocks, D=32 (the test fixtures)")
    parser.add_argument("--write-fixture", type=Path)
    parser.add_argument("--report", type=Path, help="write the differences as JSON")
    args = parser.parse_args(argv)
    if args.compare:
        diffs = compare_fixture(args.compare)
        for name, value in diffs.items():
            print(f"{name:12s} max abs diff {value:.3e}")
        if args.report:
            args.report.write_text(json.dumps({"fixture": str(args.compare), "max_abs_diff": diffs}, indent=2))
        return 0
    if not (args.reference_dir and args.round and args.write_fixture):
        parser.error("the reference side needs --reference-dir, --round and --write-fixture")
    reference_dir = args.reference_dir.resolve()
    fixture = args.write_fixture.resolve() if args.write_fixture else None
    with tempfile.TemporaryDirectory() as workdir:
        net, _ = build_reference(reference_dir, args.round, args.seed, args.small, Path(workdir))
        state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
        x, mask = make_batch(args.seed, args.sequences, 64 if args.small else 128)
        reference = run_reference(net, x, mask)
    if fixture:
        arrays = {f"state/{k}": v for k, v in state.items()}
        arrays.update({"input/landmarks": x, "input/padding_mask": mask,
                       "meta": np.array(json.dumps({"round": args.round, "seed": args.seed, "small": args.small}))})
        arrays.update({f"reference/{k}": v for k, v in reference.items()})
        np.savez_compressed(fixture, **arrays)
        print(f"fixture -> {fixture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
