"""The ``aslfs`` commands that are not pipeline stages (the stages are declared in ``stages/``). Each module provides
``add_arguments(parser)`` and ``run(args) -> int``; the program (:mod:`stages.cli`) adds them and reports their errors.
"""

#: command name (its module under aslfs.commands, with "-" as "_") -> one-line help
COMMANDS: dict[str, str] = {
    "model": "build a model preset and print its summary",
    "import-checkpoint": "import a checkpoint of the 1st-place reference code into a .keras model",
    "predict": "predict phrases for a competition directory or a parquet file",
    "render": "draw one sequence as an animated GIF or a contact sheet PNG",
    "synth-stats": "hand statistics of a competition-format directory (size, position, motion, visibility)",
    "demo": "run the demo pipeline (dvc repro on the demo profile) and print the summary",
    "profile": "rewrite params.yaml from a profile: demo, ci or kaggle-1st",
    "serve": "serve a registered model over HTTP with MLflow's scoring server (127.0.0.1)",
    "servers": "start, stop or show local Prefect and MLflow servers (127.0.0.1)",
}


def model_overrides(items: list[str]) -> dict:
    """``--set FIELD=VALUE`` arguments (VALUE read as YAML) as ModelConfig overrides; a malformed one is a
    :class:`~aslfs.errors.ConfigError` naming it."""
    import yaml

    from aslfs.errors import ConfigError

    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected FIELD=VALUE")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides
