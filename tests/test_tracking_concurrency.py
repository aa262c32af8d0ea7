"""Concurrent stages (the pipeline flow trains round-1 folds and round-2 seeds at the same time) open one fresh
MLflow sqlite store together: before the store lock, the second process failed with ``duplicate column name: step``
(both migrating the new database) or ``experiment already exists``."""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(300)

_OPEN_RUN = textwrap.dedent("""
    import sys, time
    from aslfs import env
    env.setup()
    from aslfs import tracking
    start = float(sys.argv[1])
    time.sleep(max(0.0, start - time.time()))  # both processes reach the store at the same moment
    with tracking.start_run(sys.argv[2], "train") as run:
        run.log_metrics({"x": 1.0}, step=0)
    print("ok")
""")


def test_processes_opening_a_new_store_at_once_all_succeed_under_one_parent_run(tmp_path):
    import time

    environ = {**os.environ, "ASLFS_ROOT": str(tmp_path), "ASLFS_PIPELINE_RUN": "p-concurrent"}
    environ.pop("MLFLOW_TRACKING_URI", None)
    start = f"{time.time() + 12:.3f}"  # after both have imported mlflow
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_RUN, start, f"run{i}"], env=environ, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [p.communicate() for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err.strip().splitlines()[-1:]
        assert out.strip() == "ok"

    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.get_experiment_by_name("aslfs")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("aslfs.kind") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("aslfs.kind") == "train"]
    assert len(parents) == 1
    assert sorted(r.info.run_name for r in children) == ["run0", "run1", "run2"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert all(r.info.status == "FINISHED" for r in children)
