"""The registered model name is ``export.model_name`` for both stages that use the registry: export registers the file
under it and evaluate promotes the ``champion`` alias on it (a renamed model keeps its promotions)."""

import json
import os

import yaml

from bad_inputs_fixtures import run_stage
from export.toy_tflite import write_probe_submission
from helpers import random_dataset


def test_evaluate_promotes_on_the_configured_model_name(tmp_path):
    from mlflow.tracking import MlflowClient

    from aslfs import registry, tracking
    from aslfs.config import SelectParams
    from aslfs.data.select import select

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "ASLFS_ROOT": str(tmp_path)}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"export": {"model_name": "renamed-speller"}}))
    submission = write_probe_submission(tmp_path / "submission")
    # what the export stage does with this params file: register the file under export.model_name
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with tracking.start_run("export", kind="export"):
            version = registry.register_submission(submission, name="renamed-speller")
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert version.name == "renamed-speller"

    meta, _ = random_dataset(tmp_path / "raw", n_sequences=6, sequences_per_file=3, frames=(10, 40), seed=8)
    select(tmp_path / "raw", tmp_path / "selected", SelectParams())
    meta.assign(fold=meta.participant_id % 2)[["sequence_id", "participant_id", "fold", "is_supplemental"]].to_csv(
        tmp_path / "folds.csv", index=False)
    proc = run_stage("evaluate", submission, tmp_path / "selected", tmp_path / "folds.csv", 0,
                     tmp_path / "evaluate.json", tmp_path / "plots", "--registry", tmp_path / "registry.json",
                     "--params", params, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads((tmp_path / "registry.json").read_text())
    assert (outcome["name"], outcome["version"], outcome["alias"]) == ("renamed-speller", "1", "champion")
    client = MlflowClient(uri)
    assert str(client.get_model_version_by_alias("renamed-speller", "champion").version) == "1"
    assert [m.name for m in client.search_registered_models()] == ["renamed-speller"]
