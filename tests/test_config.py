import pytest

from aslfs.config import load_params, parse_params
from aslfs.errors import ConfigError


def test_repo_params_validate():
    p = load_params("params.yaml")
    assert p.folds.n_folds == 4


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"folds\.n_fold"):
        parse_params({"folds": {"n_fold": 4}})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"synth\.sequences"):
        parse_params({"synth": {"sequences": "many"}})


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
