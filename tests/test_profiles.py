"""Profiles: the committed params.yaml is exactly the demo profile; kaggle-1st is the winning recipe."""

import subprocess
from pathlib import Path

import pytest
import yaml

from aslfs.config import load_params
from aslfs.errors import ConfigError
from aslfs.profiles import params_yaml, render_params, write_params

ROOT = Path(__file__).resolve().parents[1]


def committed_params_yaml() -> str:
    """``params.yaml`` as committed (``git show HEAD:params.yaml``): the working copy may hold a user's profile switch
    or ``dvc exp run -S`` value. Without git history (an exported tree), the file itself."""
    proc = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else (ROOT / "params.yaml").read_text()


def test_committed_params_is_the_demo_profile():
    assert committed_params_yaml() == params_yaml("demo"), "regenerate with `aslfs profile demo` and commit it"


def test_kaggle_profile_is_the_reference_recipe():
    p = render_params("kaggle-1st", raw_dir="/data/asl")
    assert p.data.source == "raw" and p.data.raw_dir == "/data/asl"
    r1, r2 = p.train.round1, p.train.round2
    assert (r1.preset, r1.epochs, r1.weight_decay, r1.min_seq_len) == ("kaggle-1st-round1", 300, 0.05, 15)
    assert (r2.preset, r2.epochs, r2.weight_decay, r2.min_seq_len) == ("kaggle-1st-round2", 400, 0.08, 1)
    for r in (r1, r2):
        assert (r.batch_size, r.grad_accum, r.peak_lr, r.warmup_epochs) == (64, 8, 4.5e-3, 10.0)
    assert p.train.clipnorm == 4.0 and p.train.backward_weight == 0.4 and p.train.confidence_weight == 0.02
    assert p.pipeline.round1_folds == [0, 1, 2, 3] and p.pipeline.round2_fold == -1 and len(p.pipeline.round2_seeds) == 2
    assert p.folds.n_folds == 4 and p.sampling.max_len == 384
    assert p.export.confidence_threshold == 0.15 and p.export.min_frames == 15
    assert not any(v for k, v in p.augment.model_dump().items() if k.endswith(("_fixed", "_check", "_counts")))
    # the demo's departures (CTC decoding, lighter augmentation, part features only) stay out of the recipe
    assert (p.augment.list_p, p.augment.flip_p, p.augment.cutmix_p) == (1.0, 0.5, 0.5)
    assert p.export.head == "attention" and p.train.ctc_weight == 0.0
    from aslfs.models.config import get_config
    assert get_config(r1.preset).global_extractor and get_config(r2.preset).global_extractor


def test_written_profile_loads(tmp_path):
    path = write_params(tmp_path / "params.yaml", "ci")
    assert load_params(path).train.round1.preset == "tiny"
    assert yaml.safe_load(path.read_text())["profile"] == "ci"


def test_unknown_profile():
    with pytest.raises(ConfigError, match="unknown profile"):
        render_params("nope")
