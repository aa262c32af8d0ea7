"""TFLite parity with the 1st-place reference: their hand-ported fp16 TFLite against ours, from the same checkpoints.

Three steps, each cached in the work folder:

1. ``reference``: the reference's own ``scripts/convert_cfg_2_to_tf_lite.py`` is run, unmodified, in a scratch copy of
   its working layout (symlinks to the checkout plus the few data files it opens: the character map, the landmark
   columns, a one-row fold table, the two checkpoints and placeholder validation files it loads but does not use).
   The hub lookup of the ``facebook/s2t-small-librispeech-asr`` config is answered offline with its published
   values. Wall time and peak resident memory come from ``/usr/bin/time -v``.
2. ``ours``: the same checkpoints are imported (``aslfs import-checkpoint --preset kaggle-1st-round2``) and the two
   members exported with ``aslfs export OUT MEMBERS…``; timed the same way.
3. ``compare``: both files run on the same generated sequences (raw ``[frames, 390]`` float32 with NaNs, mixed
   lengths); the report gives the share of identical decoded strings and the largest logit difference over the rows
   both files produced for the same prefix.

The reference side runs in the reference's own environment (``--ref-python``: torch, transformers 4.32, TF 2.12);
this file is re-entered there through the ``_ref-*`` subcommands, which use only that environment's packages.

Usage::

    python scripts/reference_tflite.py run --reference /path/to/checkout --work /path/to/work [--sequences 60]

:func:`run_tflite_parity` is the same, as a function.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REF_PYTHON = "/work/refenv/venv/bin/python"
CONVERT_SCRIPT = "scripts/convert_cfg_2_to_tf_lite.py"
SEEDS = (0, 1)

# Published values of the hub config ``facebook/s2t-small-librispeech-asr`` (its config.json). cfg_2 overrides the
# sizes; what it inherits is the head count, activation, dropouts, scale_embedding and layerdrop.
S2T_SMALL_CONFIG = {
    "activation_dropout": 0.1,
    "activation_function": "relu",
    "attention_dropout": 0.1,
    "bos_token_id": 0,
    "classifier_dropout": 0.0,
    "conv_channels": 1024,
    "conv_kernel_sizes": [5, 5],
    "d_model": 256,
    "decoder_attention_heads": 4,
    "decoder_ffn_dim": 2048,
    "decoder_layerdrop": 0.0,
    "decoder_layers": 6,
    "decoder_start_token_id": 2,
    "dropout": 0.1,
    "early_stopping": True,
    "encoder_attention_heads": 4,
    "encoder_ffn_dim": 2048,
    "encoder_layerdrop": 0.0,
    "encoder_layers": 12,
    "eos_token_id": 2,
    "init_std": 0.02,
    "input_channels": 1,
    "input_feat_per_channel": 80,
    "is_encoder_decoder": True,
    "max_length": 200,
    "max_source_positions": 6000,
    "max_target_positions": 1024,
    "num_beams": 5,
    "num_conv_layers": 2,
    "num_hidden_layers": 12,
    "pad_token_id": 1,
    "scale_embedding": True,
    "use_cache": True,
    "vocab_size": 10000,
}

_REF_LINKS = ("configs", "data", "models", "scripts", "postprocess", "metrics", "utils.py")


class ParityError(RuntimeError):
    """A step of the comparison could not run; the message names the step and the cause."""


# ---------------------------------------------------------------------------------------------------------------
# reference side (runs under --ref-python)


def _tolerate_cpu_torch_with_cuda_torchvision() -> None:
    """timm imports torchvision; a CUDA torchvision build beside a CPU torch fails registering its (unused) ops."""
    import torch.library

    original = torch.library.register_fake

    def register_fake(op, *args, **kwargs):
        if not (isinstance(op, str) and op.startswith("torchvision::")):
            return original(op, *args, **kwargs)

        def decorate(fn):
            try:
                return original(op, *args, **kwargs)(fn)
            except RuntimeError:
                return fn

        return decorate

    torch.library.register_fake = register_fake


def _ref_prepare_imports(run_dir: Path) -> None:
    """Working directory, import paths and the offline hub config, as the reference's scripts expect them."""
    os.chdir(run_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    for sub in ("scripts", ".", "models", "data", "configs"):
        sys.path.insert(0, str(run_dir / sub))
    _tolerate_cpu_torch_with_cuda_torchvision()
    from transformers.models.speech_to_text import Speech2TextConfig

    def from_pretrained(cls, name, *args, **kwargs):
        if name != "facebook/s2t-small-librispeech-asr":
            raise ParityError(f"hub config {name!r} is not available offline")
        return cls(**S2T_SMALL_CONFIG)

    Speech2TextConfig.from_pretrained = classmethod(from_pretrained)
    try:
        import albumentations  # noqa: F401
    except ImportError:
        # cfg_2 builds its training augmentations at import; neither checkpoints nor the export use them.
        import types

        class _Inert:
            def __init__(self, *args, **kwargs):
                pass

            def __getattr__(self, name):
                if name.startswith("__"):
                    raise AttributeError(name)
                return _Inert

        def _module_attr(name):
            if name.startswith("__"):
                raise AttributeError(name)
            return _Inert

        stub = types.ModuleType("augmentations")
        stub.__getattr__ = _module_attr
        sys.modules["augmentations"] = stub


def _ref_make_checkpoints(run_dir: Path, out_dir: Path, seeds) -> None:
    """cfg_2 checkpoints from the reference's ``Net``, seeded, with input-sensitive weights.

    A freshly initialised cfg_2 decodes nearly the same string for every input (decoder weights at std 0.02), so the
    decoder's matrices are redrawn at std 1/sqrt(fan_in), every 1-D parameter and BatchNorm statistic is jittered
    (so that a swapped or missed scale, bias or running statistic shows), and the confidence head's bias is raised
    to 2 so that the dummy rule fires only below 15 frames. The pad row of the token embeddings stays zero, as
    PyTorch's ``padding_idx`` keeps it in any trained checkpoint.
    """
    import importlib

    import torch

    _ref_prepare_imports(run_dir)
    cfg = importlib.import_module("cfg_2").cfg
    net_cls = importlib.import_module(cfg.model).Net
    out_dir.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        torch.manual_seed(seed)
        net = net_cls(cfg).eval()
        gen = torch.Generator().manual_seed(1000 + seed)
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name.startswith("decoder.") and p.dim() >= 2:
                    p.copy_(torch.randn(p.shape, generator=gen) * p.shape[-1] ** -0.5)
                elif p.dim() == 1:
                    p.add_(torch.randn(p.shape, generator=gen) * 0.05)
            for m in net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
            net.aux_fc.bias.fill_(2.0)
            pad = cfg.tokenizer[0][cfg.pad_token]
            for decoder in (net.decoder, net.decoder2):  # a trained checkpoint keeps the padding_idx row at zero
                decoder.decoder.embed_tokens.weight[pad].zero_()
        torch.save({"model": net.state_dict()}, out_dir / f"checkpoint_last_seed{seed}.pth")
        print(f"checkpoint seed {seed}: {out_dir / f'checkpoint_last_seed{seed}.pth'}")


def _ref_convert(run_dir: Path) -> None:
    """The reference's convert script, unmodified, with the offline hub config."""
    import runpy

    import torch

    _ref_prepare_imports(run_dir)
    # The script torch.loads one validation file per seed and never uses it.
    for seed in SEEDS:
        torch.save({"generated_ids": []}, run_dir / "datamount/weights/cfg_2/fold-1" / f"val_data_seed{seed}.pth")
    sys.argv = [CONVERT_SCRIPT]
    runpy.run_path(str(run_dir / CONVERT_SCRIPT), run_name="__main__")


def _ref_run_tflite(model: Path, seqs: Path, out: Path) -> None:
    """Fallback runner with the reference environment's ``tf.lite`` (for files the LiteRT runtime refuses)."""
    import numpy as np
    import tensorflow as tf

    data = np.load(seqs)
    interp = tf.lite.Interpreter(model_path=str(model), num_threads=2)
    runner = interp.get_signature_runner("serving_default")
    rows = {}
    for key in sorted(data.files, key=lambda k: int(k.split("_")[1])):
        rows[key] = runner(inputs=data[key])["outputs"]
    np.savez(out, **rows)


# ---------------------------------------------------------------------------------------------------------------
# our side


def _timed(cmd, *, cwd=None, env=None, log: Path) -> dict:
    """Run ``cmd`` under ``/usr/bin/time -v``; wall seconds and peak RSS (GB) of the largest process in its tree."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        output = text.split("\tCommand being timed:")[0]  # without /usr/bin/time's own report
        tail = "\n".join(output.strip().splitlines()[-10:])
        raise ParityError(f"{' '.join(map(str, cmd[:4]))} … failed (exit {proc.returncode}); log {log}:\n{tail}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return {"seconds": round(wall, 1), "peak_rss_gb": round(int(m.group(1)) / 1024**2, 2) if m else None, "log": str(log)}


def _prepare_reference_run(reference: Path, run_dir: Path, checkpoints) -> None:
    from aslfs.landmarks import SELECTED_COLUMNS

    for name in (CONVERT_SCRIPT, "models/mdl_2_pt.py", "models/mdl_2_tf.py", "configs/cfg_2.py",
                 "datamount/character_to_prediction_index.json", "datamount/symmetry.csv"):
        if not (reference / name).is_file():
            raise ParityError(f"{reference}: reference checkout lacks {name}")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in _REF_LINKS:
        link = run_dir / name
        if not link.exists() and (reference / name).exists():
            link.symlink_to((reference / name).resolve())
    dm = run_dir / "datamount"
    (dm / "train_landmarks_npy").mkdir(parents=True, exist_ok=True)
    for name in ("character_to_prediction_index.json", "symmetry.csv"):
        shutil.copyfile(reference / "datamount" / name, dm / name)
    (dm / "train_landmarks_npy" / "inference_args.json").write_text(json.dumps({"selected_columns": list(SELECTED_COLUMNS)}))
    (dm / "train_folded_oof_supp.csv").write_text("file_id,sequence_id,phrase,fold,is_sup,seq_len\n0,0,abc,0,0,20\n")
    wdir = dm / "weights" / "cfg_2" / "fold-1"
    if wdir.exists():
        shutil.rmtree(wdir)
    wdir.mkdir(parents=True)
    for seed, ckpt in zip(SEEDS, checkpoints):
        (wdir / f"checkpoint_last_seed{seed}.pth").symlink_to(Path(ckpt).resolve())


def make_checkpoints(reference, out_dir, *, ref_python: str = REF_PYTHON) -> list[Path]:
    """Two seeded cfg_2 checkpoints (``checkpoint_last_seed{0,1}.pth``) made with the reference's own model class."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"checkpoint_last_seed{s}.pth" for s in SEEDS]
    if all(p.is_file() for p in paths):
        return paths
    run_dir = out_dir / "refrun"
    _prepare_reference_run(Path(reference), run_dir, paths)
    cmd = [ref_python, str(Path(__file__).resolve()), "_ref-checkpoints", str(run_dir), str(out_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ParityError(f"making reference checkpoints failed:\n{proc.stderr[-3000:]}")
    return paths


def reference_export(reference, checkpoints, work, *, ref_python: str = REF_PYTHON) -> dict:
    """Step 1: their convert script on the checkpoints; cached as ``work/reference/model.tflite`` + ``timing.json``."""
    out = Path(work) / "reference"
    timing = out / "timing.json"
    if timing.is_file() and (out / "model.tflite").is_file():
        return json.loads(timing.read_text())
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "refrun"
    _prepare_reference_run(Path(reference), run_dir, checkpoints)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTHONPATH", None)
    cmd = [ref_python, str(Path(__file__).resolve()), "_ref-convert", str(run_dir)]
    res = _timed(cmd, env=env, log=out / "convert.log")
    produced = run_dir / "datamount" / "weights" / "cfg_2" / "fold-1" / "model.tflite"
    if not produced.is_file():
        raise ParityError(f"the reference's convert script finished without writing {produced}")
    shutil.copyfile(produced, out / "model.tflite")
    res["bytes"] = (out / "model.tflite").stat().st_size
    res["command"] = " ".join(cmd)
    timing.write_text(json.dumps(res, indent=2))
    return res


def our_export(checkpoints, work, *, preset: str = "kaggle-1st-round2") -> dict:
    """Step 2: import each checkpoint and export the two-member fp16 ensemble; cached like step 1."""
    out = Path(work) / "ours"
    timing = out / "timing.json"
    if timing.is_file() and (out / "submission" / "model.tflite").is_file():
        return json.loads(timing.read_text())
    out.mkdir(parents=True, exist_ok=True)
    aslfs = [sys.executable, "-m", "stages.cli"]
    members, imports = [], []
    for seed, ckpt in zip(SEEDS, checkpoints):
        member = out / f"seed{seed}.keras"
        cmd = [*aslfs, "import-checkpoint", str(ckpt), "--preset", preset, "--out", str(member)]
        imports.append(_timed(cmd, log=out / f"import_seed{seed}.log"))
        members.append(str(member))
    params = out / "params-kaggle-1st.yaml"  # the reference's export settings (attention decoding, dummy rule 0.15)
    subprocess.run([*aslfs, "profile", "kaggle-1st", "--out", str(params)], check=True, capture_output=True)
    settings = yaml.safe_load(params.read_text())
    settings["export"]["count_pad_positions"] = True  # position ids as in their cached TensorFlow port
    params.write_text(yaml.safe_dump(settings, sort_keys=False))
    cmd = [*aslfs, "export", str(out / "submission"), *members, "--params", str(params), "--no-register",
           "--no-diagnostics"]
    res = _timed(cmd, log=out / "export.log")
    res["bytes"] = (out / "submission" / "model.tflite").stat().st_size
    res["command"] = " ".join(cmd)
    res["import"] = imports
    timing.write_text(json.dumps(res, indent=2))
    return res


def generate_sequences(n: int = 60, seed: int = 0) -> list:
    """Raw competition-shaped sequences ``[T, 390]`` float32 with NaNs, lengths mixed across the graph's branches.

    Lengths cover the dummy rule (< 15 frames), the plain path (15–383) and the resize (≥ 384). Each has a moving
    body with per-landmark jitter; one hand is missing throughout, the other in random frames, as in the recordings.
    """
    import numpy as np

    from aslfs.landmarks import LEFT_HAND, NUM_LANDMARKS, RIGHT_HAND

    rng = np.random.default_rng(seed)
    fixed = [3, 10, 14, 15, 16, 30, 383, 384, 385, 500]
    lengths = fixed + list(rng.integers(15, 384, size=max(0, n - len(fixed) - 5))) + list(rng.integers(385, 700, size=5))
    seqs = []
    for t in lengths[:n]:
        base = rng.uniform(0.2, 0.8, size=(1, 3, NUM_LANDMARKS))
        base[:, 2] = rng.normal(0, 0.05, size=(1, NUM_LANDMARKS))
        drift = np.cumsum(rng.normal(0, 0.01, size=(t, 3, 1)), axis=0)
        x = base + drift + rng.normal(0, 0.01, size=(t, 3, NUM_LANDMARKS))
        gone, present = (LEFT_HAND, RIGHT_HAND) if rng.random() < 0.5 else (RIGHT_HAND, LEFT_HAND)
        x[:, :, gone] = np.nan
        hand = x[:, :, present]
        hand[rng.random(t) < 0.3] = np.nan
        x[:, :, present] = hand
        seqs.append(x.reshape(t, 3 * NUM_LANDMARKS).astype(np.float32))
    return seqs


def _run_litert(model: Path, seqs) -> list:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model), num_threads=2)
    runner = interp.get_signature_runner("serving_default")
    return [runner(inputs=s)["outputs"] for s in seqs]


def _run_tflite(model: Path, seqs, work: Path, ref_python: str) -> tuple[list, str]:
    """Rows of each sequence; LiteRT in this environment, else ``tf.lite`` of the reference environment."""
    import numpy as np

    try:
        return _run_litert(model, seqs), "ai_edge_litert"
    except Exception as exc:  # noqa: BLE001 — any refusal falls back to the other runtime, reported below
        first = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    inp, outp = work / "seqs.npz", work / f"rows_{model.parent.name}.npz"
    np.savez(inp, **{f"s_{i}": s for i, s in enumerate(seqs)})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([ref_python, str(Path(__file__).resolve()), "_ref-tflite", str(model), str(inp), str(outp)],
                          capture_output=True, text=True, env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        raise ParityError(f"{model}: neither LiteRT ({first}) nor tf.lite could run it:\n{proc.stderr[-2000:]}")
    data = np.load(outp)
    return [data[f"s_{i}"] for i in range(len(seqs))], f"tf.lite (reference env; LiteRT: {first})"


def compare(reference_tflite, ours_tflite, seqs, work, *, ref_python: str = REF_PYTHON) -> dict:
    """Step 3: both files on ``seqs``; :func:`compare_rows` of their outputs, and the runtime each needed."""
    work = Path(work)
    ref_rows, ref_rt = _run_tflite(Path(reference_tflite), seqs, work, ref_python)
    our_rows, our_rt = _run_tflite(Path(ours_tflite), seqs, work, ref_python)
    result = compare_rows(ref_rows, our_rows, [len(s) for s in seqs])
    result.update({"runtime_reference": ref_rt, "runtime_ours": our_rt})
    return result


def compare_rows(ref_rows, our_rows, frames, max_rows: int = 32) -> dict:
    """Strings and logits of two files' outputs, sequence by sequence.

    The logit difference of a sequence is taken over the rows both files produced for the same prefix: up to and
    including the first row whose argmax differs (after it, the two decoders are fed different tokens).

    ``identical_within_contract`` compares the first ``max_rows`` rows only: the reference returns a 33rd row when
    no end token came, aslfs at most 32 (a training target never has a character in its 33rd slot).
    """
    import numpy as np

    from aslfs.export.runtime import rows_to_text

    per_seq, max_diff, same, same_rows = [], 0.0, 0, 0
    for t, a, b in zip(frames, ref_rows, our_rows):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        sa, sb = rows_to_text(a), rows_to_text(b)
        ia, ib = a.argmax(-1), b.argmax(-1)
        k = 0
        while k < min(len(a), len(b)):
            k += 1
            if ia[k - 1] != ib[k - 1]:
                break
        d = float(np.abs(a[:k] - b[:k]).max()) if k else 0.0
        max_diff = max(max_diff, d)
        same += sa == sb
        same_rows += rows_to_text(a[:max_rows]) == rows_to_text(b[:max_rows])
        per_seq.append({"frames": int(t), "reference": sa, "ours": sb, "max_logit_diff": d,
                        "rows": [int(len(a)), int(len(b))]})
    n = len(per_seq)
    return {
        "sequences": n,
        "identical_strings": same,
        "identical_pct": round(100.0 * same / n, 2) if n else 0.0,
        "identical_within_contract": same_rows,
        "identical_within_contract_pct": round(100.0 * same_rows / n, 2) if n else 0.0,
        "max_logit_diff": max_diff,
        "distinct_reference_strings": len({p["reference"] for p in per_seq}),
        "per_sequence": per_seq,
    }


def run_tflite_parity(reference_dir, checkpoints=None, sequences=None, *, work="/work/reftflite-out",
                      ref_python: str = REF_PYTHON) -> dict:
    """Both exports of the same two cfg_2 checkpoints, compared on ``sequences`` (default: 60 generated ones).

    ``checkpoints``: two ``checkpoint_last_seed{seed}.pth`` files; made with the reference's model class when None.
    Every step is cached under ``work``; delete ``work/reference`` or ``work/ours`` to redo one.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    if checkpoints is None:
        checkpoints = make_checkpoints(reference_dir, work / "checkpoints", ref_python=ref_python)
    if len(checkpoints) != 2:
        raise ParityError(f"two checkpoints expected (one per seed), got {len(checkpoints)}")
    seqs = generate_sequences() if sequences is None else sequences
    ref = reference_export(reference_dir, checkpoints, work, ref_python=ref_python)
    ours = our_export(checkpoints, work)
    result = compare(work / "reference" / "model.tflite", work / "ours" / "submission" / "model.tflite", seqs, work,
                     ref_python=ref_python)
    result.update({"reference_export": ref, "our_export": ours, "checkpoints": [str(c) for c in checkpoints]})
    (work / "parity.json").write_text(json.dumps(result, indent=2))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="export with both implementations and compare the TFLite files")
    r.add_argument("--reference", required=True, help="reference checkout (with datamount/ character map, symmetry)")
    r.add_argument("--work", default="/work/reftflite-out", help="cache folder (default /work/reftflite-out)")
    r.add_argument("--checkpoints", nargs=2, help="two cfg_2 checkpoints (default: made with the reference's Net)")
    r.add_argument("--sequences", type=int, default=60, help="generated sequences (default 60)")
    r.add_argument("--ref-python", default=REF_PYTHON, help="python of the reference environment")
    c = sub.add_parser("checkpoints", help="only make the two seeded cfg_2 checkpoints")
    c.add_argument("--reference", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--ref-python", default=REF_PYTHON)
    for name in ("_ref-checkpoints", "_ref-convert", "_ref-tflite"):
        h = sub.add_parser(name)
        h.add_argument("paths", nargs="+")
    a = ap.parse_args(argv)
    if a.cmd == "_ref-checkpoints":
        _ref_make_checkpoints(Path(a.paths[0]), Path(a.paths[1]), SEEDS)
        return 0
    if a.cmd == "_ref-convert":
        _ref_convert(Path(a.paths[0]))
        return 0
    if a.cmd == "_ref-tflite":
        _ref_run_tflite(*map(Path, a.paths))
        return 0
    try:
        if a.cmd == "checkpoints":
            for p in make_checkpoints(a.reference, a.out, ref_python=a.ref_python):
                print(p)
            return 0
        res = run_tflite_parity(a.reference, a.checkpoints, generate_sequences(a.sequences), work=a.work,
                                ref_python=a.ref_python)
    except ParityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = {k: v for k, v in res.items() if k != "per_sequence"}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
