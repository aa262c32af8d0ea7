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


def test_model_overrides_are_typed_at_load_time(tmp_path):
    def load(overrides):
        path = tmp_path / "params.yaml"
        path.write_text(f"train:\n  round2:\n    preset: demo\n    model_overrides: {overrides}\n")
        return load_params(path)

    assert load("{num_layers: 2}").train.round2.architecture().num_layers == 2
    with pytest.raises(ConfigError, match=r"params.yaml: train\.round2\.model_overrides\.num_layer: Extra inputs"):
        load("{num_layer: 2}")
    with pytest.raises(ConfigError, match=r"train\.round2\.model_overrides\.ctc_head: Input should be a valid bool"):
        load("{ctc_head: 'yes'}")
    with pytest.raises(ConfigError, match=r"train\.round2: .*hidden_dim 90 not divisible"):
        load("{hidden_dim: 90}")
    with pytest.raises(ConfigError, match=r"train\.round2: .*unknown model preset 'demoo'"):
        parse_params({"train": {"round2": {"preset": "demoo"}}})


def test_each_value_has_one_key():
    from aslfs.config import OofParams, TrainParams

    assert not {"pp_min_frames", "pp_min_confidence"} & set(TrainParams.model_fields)  # export.min_frames, ...
    assert not {"supplemental_score", "max_supplemental_phrase_len"} & set(OofParams.model_fields)  # sampling.*
