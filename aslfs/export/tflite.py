"""TFLite export of the ensemble graph: SavedModel → TFLite with fp16 weights and builtin ops only.

The route (style.md §1 caveat: pinned TF 2.21 / Keras 3.15, one numerics test owned here): the members are tracked by
a ``keras.export.ExportArchive``, whose endpoints call :class:`aslfs.export.graph.EnsembleGraph`; the archive is
written as a SavedModel and converted with ``TFLiteConverter.from_saved_model`` (``Optimize.DEFAULT`` +
``supported_types=[float16]``: fp16 weights, float32 compute; ``supported_ops=[TFLITE_BUILTINS]``: no Flex ops).
Converting from a concrete function instead silently drops the weights, so it is not used.

The file gets two signatures sharing the weights:

- ``serving_default`` — the competition contract: input ``inputs`` float32 ``[T, 390]``, output ``outputs`` float32
  ``[L, 63]`` (post-processing inside);
- ``diagnostics`` (optional) — the same graph without post-processing: ``outputs`` (raw rows), ``confidence`` and
  ``dummy`` (1 when the rule fires), used by evaluation.

:func:`write_submission` writes exactly the two files of a submission zip: ``model.tflite`` and
``inference_args.json`` (``{"selected_columns": [...390 names]}``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aslfs.atomic import write_bytes, write_json
from aslfs.errors import AslfsError

MODEL_FILE = "model.tflite"
ARGS_FILE = "inference_args.json"
INPUT_NAME = "inputs"
OUTPUT_NAME = "outputs"


class ExportError(AslfsError):
    """The graph cannot be exported under the competition's constraints (Flex ops, size)."""


@dataclass
class ExportResult:
    """What :func:`write_submission` produced."""

    tflite_path: str
    args_path: str
    bytes: int
    members: int
    signatures: list[str]
    saved_model_seconds: float
    convert_seconds: float
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6

    def to_dict(self) -> dict:
        return {**asdict(self), "megabytes": round(self.megabytes, 3)}


def input_spec(name: str = INPUT_NAME):
    import tensorflow as tf

    from aslfs.landmarks import SELECTED_COLUMNS

    return tf.TensorSpec([None, len(SELECTED_COLUMNS)], tf.float32, name=name)


def find_flex_ops(model_bytes: bytes) -> list[str]:
    """Names of Flex (TF Select) custom ops in a TFLite flatbuffer (empty when the file uses builtins only)."""
    import re

    return sorted({m.decode() for m in re.findall(rb"Flex[A-Za-z0-9_]+", model_bytes)})


def convert_endpoints(
    endpoints: dict[str, Callable],
    fp16: bool = True,
    workdir: str | Path | None = None,
) -> tuple[bytes, dict]:
    """Convert ``{signature name: fn(frames) -> dict of tensors}`` to a TFLite flatbuffer.

    Args:
        endpoints: signature name → function of one float32 ``[None, 390]`` tensor named ``inputs`` returning a dict
            of output tensors. The first one should be ``serving_default``. The variables the functions read (the
            members' weights) are tracked automatically; the models must be built.
        fp16: bool. fp16 weights (``Optimize.DEFAULT`` + ``supported_types=[float16]``). Defaults to ``True``.
        workdir: where to write the intermediate SavedModel (a temporary folder, deleted, when ``None``).

    Returns:
        ``(flatbuffer bytes, timings {"saved_model_seconds", "convert_seconds"}`` (wall) and the same with
        ``_cpu_seconds`` (CPU time of this process, all threads).

    Raises:
        ExportError: the converter needs ops outside the TFLite builtins.
    """
    import keras
    import tensorflow as tf

    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="aslfs-export-")
        workdir = tmp
    saved_model = Path(workdir) / "saved_model"
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        archive = keras.export.ExportArchive()
        for name, fn in endpoints.items():
            # Trace once here; ExportArchive then reuses the concrete function (an endpoint given with an input
            # signature is traced twice, and ``archive.track(model)`` walks every layer, tracing its calls: together
            # they tripled the time of a kaggle-size export). The variables an endpoint reads are tracked for us.
            function = tf.function(fn, input_signature=[input_spec()], autograph=False)
            with tflite_friendly_matmul():
                function.get_concrete_function()
            archive.add_endpoint(name=name, fn=function)
        # No gradient functions: the SavedModel is only an intermediate for the converter.
        options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
        archive.write_out(str(saved_model), options=options, verbose=False)
        saved_seconds, saved_cpu = time.perf_counter() - start, time.process_time() - cpu_start

        start, cpu_start = time.perf_counter(), time.process_time()
        with _without_custom_gradient_notices():
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=list(endpoints))
        if fp16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            with _without_custom_gradient_notices():
                flatbuffer = converter.convert()
        except Exception as err:  # ConverterError lists the offending ops
            text = str(err)
            flex = sorted(set(_mentioned_ops(text)))
            detail = f"ops outside the TFLite builtins: {', '.join(flex)}" if flex else text.splitlines()[0][:300]
            raise ExportError(f"TFLite conversion failed ({detail})") from None
        convert_seconds, convert_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    flex = find_flex_ops(flatbuffer)
    if flex:
        raise ExportError(f"the TFLite file needs Flex ops {flex}; only builtin ops run on the Kaggle runtime")
    return flatbuffer, {"saved_model_seconds": saved_seconds, "convert_seconds": convert_seconds,
                        "saved_model_cpu_seconds": saved_cpu, "convert_cpu_seconds": convert_cpu}


@contextlib.contextmanager
def tflite_friendly_matmul():
    """While tracing for export, lower ``keras.ops.matmul`` of a rank >= 3 tensor by a matrix to ``tf.matmul``.

    Keras' TensorFlow backend lowers ``(B, T, D) @ (D, E)`` (every ``Dense`` on a sequence) to ``tf.tensordot``,
    which with a dynamic ``T`` becomes ten TFLite ops (``SHAPE``, ``GATHER``, ``REDUCE_PROD``, ``PACK``,
    ``CONCATENATION``, two ``RESHAPE``...) around the ``FULLY_CONNECTED``. In the export graph the batch is a static
    1, so only ``T`` is unknown: ``reshape(x, (-1, D)) @ W`` reshaped to ``(1, -1, E)`` computes the same product
    with constant shapes, i.e. ``RESHAPE``, a 2-D ``FULLY_CONNECTED``, ``RESHAPE`` — all three run by the XNNPACK
    delegate. (A rank-3 ``FULLY_CONNECTED`` with ``keep_num_dims`` measured slower.) Only tracing is affected; the
    models' code and the Keras reference run unchanged.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import numpy as tf_numpy

    original = tf_numpy.matmul

    def matmul(x1, x2):
        a = tf.convert_to_tensor(x1)
        b = tf.convert_to_tensor(x2)
        if (a.shape.rank is not None and a.shape.rank >= 3 and b.shape.rank == 2 and a.dtype == b.dtype
                and a.dtype.is_floating and a.shape[-1] is not None and b.shape[-1] is not None
                and sum(d is None for d in a.shape[:-1]) <= 1):
            # (..., D) → (N, D) @ (D, E) → (..., E); at most one unknown dim, so both shapes are constants
            out_shape = [-1 if d is None else d for d in a.shape[:-1]] + [b.shape[-1]]
            return tf.reshape(tf.matmul(tf.reshape(a, [-1, a.shape[-1]]), b), out_shape)
        return original(x1, x2)

    tf_numpy.matmul = matmul
    try:
        yield
    finally:
        tf_numpy.matmul = original


class _CustomGradientNotice(logging.Filter):
    """TensorFlow's "Importing a function (...) with ops with unsaved custom gradients" warning: it comes from loading
    our own intermediate SavedModel, saved without gradient functions on purpose (the converter never differentiates
    it). Everything else absl logs passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "with ops with unsaved custom gradients" not in record.getMessage()


@contextlib.contextmanager
def _without_custom_gradient_notices():
    logger = logging.getLogger("absl")
    notice = _CustomGradientNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def _mentioned_ops(text: str) -> list[str]:
    import re

    found = re.findall(r"TF Select ops: ([A-Za-z0-9_, ]+)", text)
    return [op.strip() for line in found for op in line.split(",") if op.strip()]


def graph_endpoints(graph, diagnostics: bool = True) -> dict[str, Callable]:
    """The signatures of the submission file for an :class:`~aslfs.export.graph.EnsembleGraph`."""
    endpoints = {"serving_default": lambda inputs: {OUTPUT_NAME: graph.serve(inputs)}}
    if diagnostics:
        endpoints["diagnostics"] = lambda inputs: graph.diagnose(inputs)
    return endpoints


def write_submission(
    graph,
    out_dir: str | Path,
    diagnostics: bool = True,
    max_megabytes: float | None = 40.0,
    workdir: str | Path | None = None,
    info: dict | None = None,
) -> ExportResult:
    """Export ``graph`` and write ``out_dir/model.tflite`` and ``out_dir/inference_args.json`` (nothing else).

    Args:
        graph: an :class:`~aslfs.export.graph.EnsembleGraph`.
        out_dir: the submission folder (created; other files in it are left alone but a stale
            ``model.tflite`` is replaced atomically).
        diagnostics: bool. Add the ``diagnostics`` signature. Defaults to ``True``.
        max_megabytes: float or ``None``. Fail when the file is larger (the competition's limit is 40 MB,
            10^6 bytes each). Defaults to ``40.0``.
        workdir: where to keep the intermediate SavedModel (temporary when ``None``).
        info: extra facts recorded in the result (preset, members...).

    Returns:
        :class:`ExportResult` (sizes, timings).
    """
    from aslfs.landmarks import inference_args

    start = time.perf_counter()
    endpoints = graph_endpoints(graph, diagnostics)
    flatbuffer, timings = convert_endpoints(endpoints, workdir=workdir)
    size = len(flatbuffer)
    if max_megabytes is not None and size > max_megabytes * 1e6:
        raise ExportError(f"model.tflite is {size / 1e6:.2f} MB, over the {max_megabytes:g} MB limit")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tflite_path = out_dir / MODEL_FILE
    args_path = out_dir / ARGS_FILE
    write_bytes(tflite_path, flatbuffer)
    write_json(args_path, inference_args(), indent=None, sort_keys=False)
    return ExportResult(
        tflite_path=str(tflite_path),
        args_path=str(args_path),
        bytes=size,
        members=len(graph.members),
        signatures=list(endpoints),
        saved_model_seconds=round(timings["saved_model_seconds"], 3),
        convert_seconds=round(timings["convert_seconds"], 3),
        seconds=round(time.perf_counter() - start, 3),
        info={**(info or {}), "cpu_seconds": {k: round(v, 3) for k, v in timings.items() if "cpu" in k}},
    )


def _members(models, preset, ensemble, untrained, seed) -> tuple[list, list[str]]:
    """The ensemble members and a description of each: trained runs, or untrained members of a preset."""
    from aslfs.errors import ConfigError
    from aslfs.export.members import trained_members, untrained_members

    if untrained:
        if not preset:
            raise ConfigError("export --untrained needs a model preset (--preset NAME)")
        members = untrained_members(preset, int(ensemble), seed)
        return members, [f"{preset} (untrained, seed {seed + i})" for i in range(int(ensemble))]
    if not models:
        raise ConfigError("export needs trained models (run folders with model.keras) or --untrained --preset")
    return trained_members(models)


def export_ensemble(
    out_dir: str | Path,
    models: Sequence[str | Path] = (),
    params=None,
    preset: str | None = None,
    ensemble: int = 1,
    untrained: bool = False,
    seed: int = 0,
    force_steps: int | None = None,
    resize_mode: str = "linear",
    register: bool | None = None,
    report_path: str | Path | None = None,
) -> ExportResult:
    """The ``export`` stage / command: N members → one graph → ``out_dir/{model.tflite, inference_args.json}``.

    Args:
        out_dir: the submission folder.
        models: trained members (:func:`aslfs.runs.expand_runs`: run folders, folders of them, ``.keras`` files).
            Ignored with ``untrained``.
        params: :class:`aslfs.config.ExportParams` (defaults when ``None``).
        preset: model preset of the untrained members (``untrained`` only).
        ensemble: number of untrained members (seeds ``seed``, ``seed + 1``, ...).
        untrained: build freshly initialised members of ``preset`` instead of loading ``models``: same graph, size
            and speed, for checking size and latency before training (the confidence rule is switched off: an
            untrained confidence head would skip decoding at random).
        seed: first seed of the untrained members.
        force_steps: decode exactly this many steps (benchmarks compare speed at equal work); ``None`` = early stop
            per ``params.early_stop``.
        resize_mode: time resize above ``max_len`` (the training's ``sampling.resize_mode``).
        register: register the file in the MLflow Model Registry (``None``: ``params.register_model``, never for
            untrained members).
        report_path: also write the result as JSON there (e.g. a DVC metrics file with the size).

    Returns:
        :class:`ExportResult`; with registration, ``info["registry"]`` holds the registered version.
    """
    from aslfs.config import ExportParams
    from aslfs.export.graph import EnsembleGraph

    params = params or ExportParams()
    members, sources = _members(models, preset, ensemble, untrained, seed)
    head = params.head
    if untrained and head == "ctc" and any(getattr(m, "ctc_head", None) is None for m in members):
        # a preset's graph is checked in any profile: use the head the preset has (the demo profile exports CTC)
        head = "attention"
    graph = EnsembleGraph(
        members,
        resize_mode=resize_mode,
        min_frames=params.min_frames,
        # An untrained confidence head says nothing, and its rule would skip decoding at random, which would make
        # size/speed checks meaningless: untrained exports keep only the length rule.
        confidence_threshold=0.0 if untrained else params.confidence_threshold,
        max_steps=params.max_steps,
        early_stop=params.early_stop,
        force_steps=force_steps,
        head=head,
        count_pad_positions=params.count_pad_positions,
    )
    info = {"head": head, "members": sources, "max_len": graph.max_len, "resize_mode": resize_mode, "max_steps": graph.max_steps,
            "force_steps": force_steps, "early_stop": graph.early_stop,
            "confidence_threshold": graph.confidence_threshold, "min_frames": graph.min_frames}
    result = write_submission(graph, out_dir, diagnostics=params.diagnostics, max_megabytes=params.max_megabytes,
                              info=info)
    if register is None:
        register = params.register_model and not untrained
    if register:
        from aslfs import registry, tracking

        with tracking.start_run("export", kind="export", params={"export": params.model_dump(), **info}) as tracker:
            tracker.log_metrics({"tflite_bytes": result.bytes, "export_seconds": result.seconds})
            version = registry.register_submission(out_dir, name=params.model_name, facts=info,
                                                   tags={"aslfs.members": len(members)})
        result.info["registry"] = version.to_dict()
    if report_path is not None:
        write_json(report_path, result.to_dict(), default=str)
    return result
