"""Import a checkpoint trained with the 1st-place reference code (PyTorch) into an aslfs model.

The reference saves ``checkpoint_last_seed{seed}.pth`` files holding ``{"model": state_dict}`` (``module.``-prefixed
when trained with DistributedDataParallel). :func:`load_state_dict_file` reads such a file, or the same state dict
saved as ``.safetensors`` or ``.npz``, into ``{name: numpy array}``; :func:`import_reference_state_dict` maps every
tensor onto the weights of a :class:`~aslfs.models.fingerspeller.FingerSpeller` (docs/reference.md §4, §7).

The mapping is strict: every reference tensor is used exactly once, every aslfs weight is set, and shapes must agree
after the layout change. Keys the mapping deliberately ignores are exactly the names in :data:`IGNORED_KEY_SUFFIXES`:

- ``num_batches_tracked`` (every BatchNorm): a step counter PyTorch uses only when ``momentum=None`` (cumulative
  average); the reference's BatchNorms have a fixed momentum, so the counter changes no output, and Keras has no such
  variable.
- ``cos`` / ``sin`` (round 2): the rotary tables, a buffer recomputed from the head size and ``max_len``; their
  shapes are still checked against the config.

Layouts: a Linear weight (out, in) becomes a Dense kernel (in, out); the stem Conv2d (O, I, kh, kw) becomes
(kh, kw, I, O); a pointwise Conv1d (O, I, 1) becomes a Dense kernel (I, O); a depthwise Conv1d (C, 1, K) becomes
(K, C, 1); scale/bias parameters (1, 1, D) become (D,).
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from aslfs.atomic import atomic_path
from aslfs.errors import ConfigError, DataError
from aslfs.models.config import ModelConfig, get_config
from aslfs.runs import MODEL_SUFFIX

IGNORED_KEY_SUFFIXES = ("num_batches_tracked",)
IGNORED_KEYS = ("cos", "sin")
PRESET_NAMES = ("kaggle-1st-round1", "kaggle-1st-round2")

_PART_EXTRACTORS = {  # reference module name -> aslfs layer name
    "feature_extractor": "feature_extractor",
    "feature_extractor_lhand": "left_hand_feature_extractor",
    "feature_extractor_rhand": "right_hand_feature_extractor",
    "feature_extractor_face": "face_feature_extractor",
    "feature_extractor_pose": "pose_feature_extractor",
}


def _linear(w):
    return np.transpose(w)


def _identity(w):
    return w


def _conv2d(w):
    return np.transpose(w, (2, 3, 1, 0))


def _pointwise(w):
    return np.transpose(w[:, :, 0])


def _depthwise(w):
    return np.transpose(w, (2, 0, 1))


def _vector(w):
    return np.reshape(w, (-1,))


def _batchnorm(ref: str, ours: str) -> list[tuple[str, str, object]]:
    return [(f"{ref}.weight", f"{ours}/gamma", _identity), (f"{ref}.bias", f"{ours}/beta", _identity),
            (f"{ref}.running_mean", f"{ours}/moving_mean", _identity),
            (f"{ref}.running_var", f"{ours}/moving_variance", _identity)]


def _layernorm(ref: str, ours: str) -> list[tuple[str, str, object]]:
    return [(f"{ref}.weight", f"{ours}/gamma", _identity), (f"{ref}.bias", f"{ours}/beta", _identity)]


def _dense(ref: str, ours: str, bias: bool = True) -> list[tuple[str, str, object]]:
    rows = [(f"{ref}.weight", f"{ours}/kernel", _linear)]
    if bias:
        rows.append((f"{ref}.bias", f"{ours}/bias", _identity))
    return rows


def _feature_extractor(ref: str, ours: str) -> list:
    return [(f"{ref}.conv_stem.weight", f"{ours}/stem_conv/kernel", _conv2d),
            *_batchnorm(f"{ref}.bn_conv", f"{ours}/stem_norm"),
            (f"{ref}.stem_linear.weight", f"{ours}/projection/kernel", _linear),
            *_batchnorm(f"{ref}.stem_bn", f"{ours}/feature_norm")]


def _block(config: ModelConfig, i: int) -> list:
    ref, ours = f"encoder.blocks.{i}", f"encoder/block_{i}"
    rows = []
    for n, part in enumerate(("mhsa", "ff_mhsa", "conv", "ff_conv"), start=1):
        rows += [(f"{ref}.scale_{part}", f"{ours}/scale_bias_{n}/scale", _vector),
                 (f"{ref}.bias_{part}", f"{ours}/scale_bias_{n}/bias", _vector)]
        rows += _layernorm(f"{ref}.ln_{part}", f"{ours}/layer_norm_{n}")
    if config.attention_type == "relative":
        att = f"{ref}.mhsa.attention"
        rows += [(f"{att}.u_bias", f"{ours}/attention/pos_bias_u", _identity),
                 (f"{att}.v_bias", f"{ours}/attention/pos_bias_v", _identity),
                 *_dense(f"{att}.query_proj", f"{ours}/attention/query"),
                 *_dense(f"{att}.key_proj", f"{ours}/attention/key"),
                 *_dense(f"{att}.value_proj", f"{ours}/attention/value"),
                 *_dense(f"{att}.pos_proj", f"{ours}/attention/position", bias=False),
                 *_dense(f"{att}.out_proj", f"{ours}/attention/attention_output")]
    else:
        att = f"{ref}.mhsa_llama"
        rows += [*_dense(f"{att}.q_proj", f"{ours}/attention/query", bias=False),
                 *_dense(f"{att}.k_proj", f"{ours}/attention/key", bias=False),
                 *_dense(f"{att}.v_proj", f"{ours}/attention/value", bias=False),
                 *_dense(f"{att}.o_proj", f"{ours}/attention/attention_output", bias=False)]
    for ff, name in (("ff_mhsa", "feed_forward_1"), ("ff_conv", "feed_forward_2")):
        rows += [*_dense(f"{ref}.{ff}.ffn1", f"{ours}/{name}/inner_dense"),
                 *_dense(f"{ref}.{ff}.ffn2", f"{ours}/{name}/output_dense")]
    conv = f"{ref}.conv"
    rows += [(f"{conv}.pw_conv_1.conv.weight", f"{ours}/convolution/pointwise_in/kernel", _pointwise),
             (f"{conv}.pw_conv_1.conv.bias", f"{ours}/convolution/pointwise_in/bias", _identity),
             (f"{conv}.dw_conv.conv.weight", f"{ours}/convolution/depthwise/kernel", _depthwise),
             *_batchnorm(f"{conv}.bn", f"{ours}/convolution/norm"),
             (f"{conv}.pw_conv_2.conv.weight", f"{ours}/convolution/pointwise_out/kernel", _pointwise),
             (f"{conv}.pw_conv_2.conv.bias", f"{ours}/convolution/pointwise_out/bias", _identity)]
    return rows


def _decoder(config: ModelConfig, ref: str, ours: str) -> list:
    rows = [(f"{ref}.decoder.embed_tokens.weight", f"{ours}/token_embedding/embeddings", _identity),
            (f"{ref}.decoder.embed_positions.weights", f"{ours}/position_table", _identity),
            *_layernorm(f"{ref}.decoder.layer_norm", f"{ours}/final_norm"),
            (f"{ref}.lm_head.weight", f"{ours}/lm_head/kernel", _linear)]
    for i in range(config.decoder_layers):
        r, o = f"{ref}.decoder.layers.{i}", f"{ours}/layer_{i}"
        for rname, oname in (("self_attn", "self_attention"), ("encoder_attn", "cross_attention")):
            for rp, op in (("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value"), ("out_proj", "output")):
                rows += _dense(f"{r}.{rname}.{rp}", f"{o}/{oname}/{op}")
        rows += [*_layernorm(f"{r}.self_attn_layer_norm", f"{o}/self_attention_norm"),
                 *_layernorm(f"{r}.encoder_attn_layer_norm", f"{o}/cross_attention_norm"),
                 *_layernorm(f"{r}.final_layer_norm", f"{o}/feedforward_norm"),
                 *_dense(f"{r}.fc1", f"{o}/fc1"), *_dense(f"{r}.fc2", f"{o}/fc2")]
    return rows


def weight_map(config: ModelConfig) -> list[tuple[str, str, object]]:
    """``(reference key, aslfs weight path, layout function)`` for every weight of a model built from ``config``."""
    rows = []
    extractors = ["feature_extractor"] if config.global_extractor else []
    if config.part_extractors:
        extractors += ["feature_extractor_lhand", "feature_extractor_rhand", "feature_extractor_face",
                       "feature_extractor_pose"]
    for ref in extractors:
        rows += _feature_extractor(ref, f"encoder/{_PART_EXTRACTORS[ref]}")
    for i in range(config.num_layers):
        rows += _block(config, i)
    if config.confidence_head:
        rows += _dense("aux_fc", "confidence_head")
    rows += _decoder(config, "decoder", "decoder")
    if config.backward_decoder:
        rows += _decoder(config, "decoder2", "backward_decoder")
    return rows


def _is_ignored(key: str) -> bool:
    return key in IGNORED_KEYS or key.rsplit(".", 1)[-1] in IGNORED_KEY_SUFFIXES


def strip_module_prefix(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop the ``module.`` prefix DistributedDataParallel puts on every key (all keys or none)."""
    keys = list(state)
    if keys and all(k.startswith("module.") for k in keys):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def reference_config(preset: str, backward_decoder: bool | None = None, **overrides) -> ModelConfig:
    """The ModelConfig of a reference checkpoint: a ``kaggle-1st-*`` preset plus overrides (small test models)."""
    if preset not in PRESET_NAMES:
        raise ConfigError(f"--preset {preset!r}: reference checkpoints are {' or '.join(PRESET_NAMES)}")
    if backward_decoder is not None:
        overrides["backward_decoder"] = backward_decoder
    return get_config(preset, **overrides)


def _check_state(state: Mapping[str, np.ndarray], config: ModelConfig, source: str) -> list:
    """Validate ``state`` against ``config``; return the rows of :func:`weight_map` with converted arrays."""
    rows = weight_map(config)
    expected = {ref for ref, _, _ in rows}
    missing = [ref for ref in expected if ref not in state]
    extra = [k for k in state if k not in expected and not _is_ignored(k)]
    round2 = any(".mhsa_llama." in k for k in state)
    round1 = any(".mhsa.attention." in k for k in state)
    if round2 != round1 and round2 != (config.attention_type == "rotary"):
        found, wanted = ("round 2", "kaggle-1st-round2") if round2 else ("round 1", "kaggle-1st-round1")
        raise DataError(f"{source}: a {found} checkpoint (attention keys of cfg_{found[-1]}); use --preset {wanted}")
    blocks = {int(k.split(".")[2]) for k in state if k.startswith("encoder.blocks.") and k.split(".")[2].isdigit()}
    if blocks and len(blocks) != config.num_layers:
        raise DataError(f"{source}: {len(blocks)} encoder blocks, but the model has {config.num_layers} "
                        "(wrong preset or sizes?)")
    if "decoder2.lm_head.weight" in extra and not config.backward_decoder:
        raise DataError(f"{source}: holds a backward decoder (decoder2.*) but the model has none; "
                        "drop --no-backward-decoder to keep it")
    if "aux_fc.weight" in extra and not config.confidence_head:
        raise DataError(f"{source}: holds a confidence head (aux_fc.*): a round-2 checkpoint, not round 1")
    if missing:
        first = sorted(missing)[0]
        hint = ""
        if first.startswith("encoder.blocks.") and "mhsa" in first:
            hint = " (wrong --preset? round 1 has relative attention, round 2 rotary)"
        elif first.startswith("decoder2."):
            hint = " (a checkpoint without backward decoder needs --no-backward-decoder)"
        raise DataError(f"{source}: missing key {first!r}{hint} ({len(missing)} missing in all)")
    if extra:
        first = sorted(extra)[0]
        hint = " (more encoder blocks than the preset: wrong --preset?)" if first.startswith("encoder.blocks.") else ""
        raise DataError(f"{source}: unexpected key {first!r}{hint} ({len(extra)} unexpected in all)")
    if "cos" in state:
        want = (1, 1, config.max_len, config.head_dim)
        if tuple(np.shape(state["cos"])) != want:
            raise DataError(f"{source}: key 'cos' has shape {tuple(np.shape(state['cos']))}, expected {want} "
                            "(wrong --preset or sizes?)")
    converted = []
    for ref, ours, layout in rows:
        value = np.asarray(state[ref])
        if not np.issubdtype(value.dtype, np.floating):
            raise DataError(f"{source}: key {ref!r} has dtype {value.dtype}, expected a float tensor")
        converted.append((ref, ours, layout(value.astype(np.float32))))
    return converted


def import_reference_state_dict(state: Mapping[str, np.ndarray], preset: str | ModelConfig,
                                backward_decoder: bool | None = None, source: str = "checkpoint", **overrides):
    """Build the aslfs model of ``preset`` (plus ``overrides``) and set every weight from a reference state dict.

    ``state`` maps reference names to arrays (``module.`` prefixes allowed). Raises :class:`DataError` (one line
    naming the key, the shape or the problem) on a missing/unexpected key or a shape mismatch.
    """
    from aslfs.models.fingerspeller import build_model

    config = preset if isinstance(preset, ModelConfig) else reference_config(preset, backward_decoder, **overrides)
    state = strip_module_prefix(state)
    converted = _check_state(state, config, source)
    model = build_model(config)
    weights = {w.path: w for w in model.weights}
    used = set()
    for ref, ours, value in converted:
        if ours not in weights:
            raise DataError(f"{source}: the model has no weight {ours!r} for key {ref!r}")
        w = weights[ours]
        if tuple(w.shape) != value.shape:
            raise DataError(f"{source}: key {ref!r} has shape {_ref_shape(state[ref])}, which maps to "
                            f"{value.shape} but {ours} is {tuple(w.shape)} (wrong --preset or sizes?)")
        w.assign(value)
        used.add(ours)
    unset = [p for p in weights if p not in used]
    if unset:
        raise DataError(f"{source}: the mapping leaves aslfs weight {unset[0]!r} unset ({len(unset)} in all)")
    return model


def _ref_shape(value) -> tuple:
    return tuple(np.shape(value))


def load_state_dict_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a reference state dict from ``.pth``/``.pt`` (``{"model": state_dict}`` or a bare state dict; read with
    ``torch.load(weights_only=True)``), ``.safetensors`` or ``.npz`` into float/int numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint file")
    suffix = path.suffix.lower()
    if suffix in (".pth", ".pt", ".bin"):
        state = _load_torch(path)
    elif suffix == ".safetensors":
        state = _load_safetensors(path)
    elif suffix == ".npz":
        state = _load_npz(path)
    else:
        raise DataError(f"{path}: unknown checkpoint format {suffix!r}; expected .pth, .safetensors or .npz")
    if not state:
        raise DataError(f"{path}: the state dict is empty")
    return state


def _load_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ConfigError(f"{path}: reading .pth needs torch (pip install 'aslfs[torch]'), "
                          "or save the state dict as .safetensors / .npz") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad or unsafe file
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable plain state dict ({message[:200]})") from None
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise DataError(f"{path}: holds a {type(obj).__name__}, not a state dict (name -> tensor)")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise DataError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor: "
                            "not a plain state dict")
        state[key] = value.detach().cpu().float().numpy() if value.is_floating_point() else value.cpu().numpy()
    return state


_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
                       "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + size])
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a safetensors file ({exc})") from None
    body = memoryview(data)[8 + size:]
    state = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            start, end = info["data_offsets"]
            shape = tuple(info["shape"])
            array = np.frombuffer(body[start:end], dtype=dtype).reshape(shape)
        except KeyError as exc:
            raise DataError(f"{path}: tensor {key!r}: unsupported or missing {exc}") from None
        except (ValueError, TypeError) as exc:
            raise DataError(f"{path}: tensor {key!r}: bad data ({exc})") from None
        state[key] = array.astype(np.float32) if np.issubdtype(dtype, np.floating) else array.copy()
    return state


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz state dict ({str(exc).splitlines()[0][:200]})") from None


def save_model_atomic(model, out: str | os.PathLike) -> Path:
    """Save ``model`` as ``.keras`` via a temporary file in the same folder, renamed into place when complete."""
    out = Path(out)
    if out.suffix != MODEL_SUFFIX:
        raise ConfigError(f"--out {out}: the model file must end in {MODEL_SUFFIX}")
    with atomic_path(out) as tmp:
        model.save(tmp)
    return out


def import_checkpoint(path: str | os.PathLike, preset: str, out: str | os.PathLike,
                      backward_decoder: bool | None = None, **overrides) -> Path:
    """Read ``path``, import it for ``preset`` and write ``out`` (``.keras``); nothing is written on error."""
    if Path(out).suffix != MODEL_SUFFIX:
        raise ConfigError(f"--out {out}: the model file must end in {MODEL_SUFFIX}")
    state = load_state_dict_file(path)
    model = import_reference_state_dict(state, preset, backward_decoder, source=str(path), **overrides)
    return save_model_atomic(model, out)
