from stages.cli import main


def test_model_command_prints_trainable_parameters_last(capsys):
    assert main(["model", "--preset", "kaggle-1st-round1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "trainable parameters: 2515040"
    assert "  attention_type: relative" in lines


def test_model_command_overrides_and_errors(capsys):
    assert main(["model", "--preset", "kaggle-1st-round2", "--set", "backward_decoder=false"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "trainable parameters: 8584209"
    assert main(["model", "--preset", "tiny", "--set", "num_layers=two"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "aslfs model: error: model.num_layers: Input should be a valid integer, got 'two'"
