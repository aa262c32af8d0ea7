"""MLflow logging of an evaluation and promotion of the evaluated file to the registry's ``champion`` alias."""

from __future__ import annotations


def track_evaluation(model, summary: dict, files: dict, params, fold, model_name: str) -> dict | None:
    """Log the evaluation to MLflow and move the ``champion`` alias when the score beats it."""
    from aslfs import registry, tracking

    tflite = registry.resolve_tflite(model)
    sha = registry.file_sha256(tflite)
    with tracking.start_run("evaluate", kind="evaluate", params={"evaluate": params.model_dump(), "fold": fold},
                            tags={registry.SHA_TAG: sha}) as tracker:
        tracker.log_metrics({k: v for k, v in summary["metrics"].items() if isinstance(v, (int, float))})
        for path in files.values():
            tracker.log_artifact(path, artifact_path="evaluate")
        if not params.promote:
            return None
        version = registry.find_version(sha, model_name)
        if version is None:
            folder = tflite.parent
            if not (folder / "inference_args.json").is_file():
                return None
            version = registry.register_submission(folder, name=model_name)
        promotion = registry.promote_if_better(version.version, summary["metrics"][params.champion_metric],
                                               name=model_name, score_key=params.champion_metric)
        tracker.set_tags({"aslfs.registered_version": version.version, "aslfs.champion": promotion.promoted})
    return {"name": promotion.name, "version": promotion.version,
            "alias": registry.CHAMPION if promotion.promoted else None, "score": promotion.score,
            "score_key": params.champion_metric, "champion_version": promotion.champion_version,
            "previous_version": promotion.previous_version, "previous_score": promotion.previous_score}
