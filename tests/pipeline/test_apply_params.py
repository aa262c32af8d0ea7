"""The pipeline flow's ``profile`` / ``overrides`` parameters write params.yaml the way ``aslfs profile`` and
``dvc exp run -S`` do: values that read back as written, a profile's values (not just its name), and a rejected
result leaves the user's file as it was."""

import pytest

from aslfs.config import load_params
from aslfs.errors import AslfsError
from aslfs.profiles import params_yaml, render_params
from flows.pipeline import apply_params


@pytest.fixture
def root(tmp_path):
    (tmp_path / "params.yaml").write_text(params_yaml("demo"))
    return tmp_path


def test_an_override_keeps_quoted_strings_readable(root):
    """ruamel wrote ``mixed_precision: 'off'`` back as a plain ``off``, which the YAML 1.1 loader reads as False."""
    apply_params(root, None, {"train.round1.epochs": 3, "train.round2.mixed_precision": "off"})
    params = load_params(root / "params.yaml")
    assert params.train.round1.epochs == 3
    assert params.train.round1.mixed_precision == "off" and params.train.round2.mixed_precision == "off"
    assert "# aslfs pipeline parameters" in (root / "params.yaml").read_text()  # comments kept


def test_a_profile_writes_its_values_not_only_its_name(root):
    apply_params(root, "ci", {"train.round1.epochs": 2})
    params = load_params(root / "params.yaml")
    ci = render_params("ci")
    assert params.profile == "ci"
    assert params.synth.sequences == ci.synth.sequences != render_params("demo").synth.sequences
    assert params.train.round1.epochs == 2


def test_a_rejected_override_leaves_the_file_as_it_was(root):
    before = (root / "params.yaml").read_text()
    with pytest.raises(AslfsError, match="epochs"):
        apply_params(root, None, {"train.round1.epochs": "many"})
    assert (root / "params.yaml").read_text() == before
    assert sorted(p.name for p in root.iterdir()) == ["params.yaml"]
