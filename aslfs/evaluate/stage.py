"""The ``evaluate`` stage: score the submission on held-out data, write the DVC metrics and plots, log to MLflow and
update the registry's ``champion`` alias."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aslfs.atomic import write_csv, write_json
from aslfs.evaluate.curves import trained_on_heldout, training_curves
from aslfs.evaluate.heldout import heldout_items
from aslfs.evaluate.outputs import write_outputs
from aslfs.evaluate.scoring import evaluate_tflite
from aslfs.runs import expand_runs


def run_evaluation(model: str | Path, data: str | Path, metrics_path: str | Path, out_dir: str | Path, params=None,
                   folds_csv: str | Path | None = None, fold: int | None = 0, runs: Sequence[str | Path] = (),
                   track: bool = True, registry_path: str | Path | None = None, progress: bool | None = None,
                   model_name: str = "asl-fingerspelling") -> dict:
    """The ``evaluate`` stage: score the submission on held-out data, write the DVC metrics and plots, log to MLflow
    and update the registry's ``champion`` alias.

    Args:
        model: the submission folder (or a ``.tflite`` file / MLflow model URI).
        data: selected store or competition directory (see :func:`aslfs.evaluate.heldout.heldout_items`).
        metrics_path: DVC metrics JSON (``score``, ``cer``, ``score_dl``, ``score_pp``, ... flat numbers).
        out_dir: plot data and reports (``by_length.csv``, ``by_participant.csv``, ``confusions.csv``,
            ``predictions.csv``, ``training_curves.csv``).
        params: :class:`aslfs.config.EvaluateParams` (defaults when ``None``).
        folds_csv, fold: restrict to the non-supplemental sequences of one fold.
        runs: the ensemble members, as export takes them (:func:`aslfs.runs.expand_runs`: run folders, folders of
            them, ``.keras`` files): training curves; a member trained on ``fold`` makes the score optimistic,
            recorded as ``trained_on_heldout`` = 1.
        track: log to MLflow (a run of kind ``evaluate``) and promote in the registry.
        registry_path: where to write the registry outcome (``{name, version, alias, ...}``); ``None`` = not written.
        progress: progress bar (``None``: only on a terminal).
        model_name: the registered model (``export.model_name``: the name export registered the file under).

    Returns:
        ``{"metrics": {...}, "files": {name: path}, "registry": {...} or None}``.
    """
    from aslfs.config import EvaluateParams

    params = params or EvaluateParams()
    members = expand_runs(runs)  # before the (long) scoring: a bad run argument fails at once
    items, total = heldout_items(data, folds_csv, fold, params.max_sequences)
    summary, table = evaluate_tflite(model, items, total=total, threads=params.threads,
                                     length_edges=params.length_bins, top_confusions=params.top_confusions,
                                     progress=progress)
    extra = {}
    if fold is not None and folds_csv is not None:
        seen = trained_on_heldout(members, fold)
        if seen is not None:
            extra["trained_on_heldout"] = seen
    files = write_outputs(summary, table, metrics_path, out_dir, extra)
    files["training_curves"] = write_csv(Path(out_dir) / "training_curves.csv", training_curves(members))
    outcome = None
    if track:
        from aslfs.evaluate.promotion import track_evaluation

        outcome = track_evaluation(model, summary, files, params, fold, model_name)
    if registry_path is not None:
        files["registry"] = write_json(registry_path, outcome or {})
    return {"metrics": {**summary["metrics"], **extra}, "files": {k: str(v) for k, v in files.items()},
            "registry": outcome}
