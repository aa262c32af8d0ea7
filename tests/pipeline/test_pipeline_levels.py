"""The pipeline flow's scheduling reads DVC's documented CLI output: levels from `dvc dag --dot`, changes from
`dvc status --json`."""

from tests.pipeline.conftest import project_env


def test_levels_and_changed_stages_of_a_fan_out_project(toy_project):
    from aslfs.pipeline import changed_stages, dag_levels

    environ = project_env()
    levels = dag_levels(toy_project, environ)
    assert levels == [["make"], ["fan@0", "fan@1", "fan@2"], ["join"]]
    # nothing has run yet: every stage is out of date
    assert changed_stages(toy_project, levels[1], environ) == ["fan@0", "fan@1", "fan@2"]


def test_levels_of_the_project_pipeline():
    from pathlib import Path

    from aslfs.pipeline import dag_levels

    root = Path(__file__).resolve().parents[2]
    levels = dag_levels(root, project_env())
    flat = [stage for level in levels for stage in level]
    assert flat.index("synth") < flat.index("select") < flat.index("normalize") < flat.index("oof")
    train1 = next(level for level in levels if any(s.startswith("train1@") for s in level))
    assert all(s.startswith("train1@") for s in train1) and len(train1) >= 1  # the folds run side by side
    assert levels[-1] == ["evaluate"]
