"""GPU requests of the pipeline flow's task runners (flows/runners.py): which stages ask, and what a task gets."""

import pytest

from flows.runners import assigned_gpus, gpu_request, make_task_runner, requesting


def test_only_training_stages_on_dask_or_ray_ask_for_gpus():
    assert gpu_request("dask", "train1@2", 2) == 2
    assert gpu_request("ray", "train2@1", 1) == 1
    assert gpu_request("dask", "export", 2) == 0 and gpu_request("dask", "normalize", 2) == 0
    assert gpu_request("threads", "train1@2", 2) == 0  # a thread pool has no resources to request
    assert gpu_request("dask", "train1@2", 0) == 0
    assert gpu_request("dask", "fan@0", 1, ("fan",)) == 1


def test_a_dask_request_is_an_annotation_of_the_submitted_task():
    import dask

    with requesting("dask", 2):
        assert dask.get_annotations() == {"resources": {"GPU": 2}}
    assert dask.get_annotations() == {}
    with requesting("dask", 0):
        assert dask.get_annotations() == {}


def test_a_local_dask_cluster_gives_each_worker_the_gpus_of_one_training():
    runner = make_task_runner("dask", max_workers=3, gpus_per_training=2)
    assert runner.cluster_kwargs["resources"] == {"GPU": 2} and runner.cluster_kwargs["n_workers"] == 3
    assert "resources" not in make_task_runner("dask", max_workers=3).cluster_kwargs


def test_gpus_are_assigned_only_inside_a_worker():
    with pytest.raises(RuntimeError, match="outside a Dask worker or a Ray task"):
        assigned_gpus(1, local_cluster=True)
