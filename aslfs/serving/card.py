"""What a registered version of the model says about itself in the MLflow registry: its signature, an input example
and a model card (the version's description, Markdown).

The card states what the file is, what it was trained on (the pipeline parameters at export), the TFLite contract,
how to call it (Python and REST) and, once evaluated, the held-out score with the evaluation run's id and metric
names (:func:`evaluation_section`, written by :func:`aslfs.registry.promote_if_better`).
"""

from __future__ import annotations

import numpy as np

from aslfs.export.runtime import NUM_INPUT_COLUMNS

EVALUATION_HEADING = "## Held-out evaluation"
_NOT_EVALUATED = "Not evaluated yet: the `evaluate` stage adds the held-out score and its run here."
#: Frames in the logged input example.
EXAMPLE_FRAMES = 16


def model_signature():
    """Input ``frames``: float32 ``[n_frames, 390]`` (``inference_args.json`` order, NaN = missing landmark);
    output ``phrase``: string.

    The pyfunc reads its input itself (:func:`aslfs.serving.pyfunc.split_sequences`: ragged batches, one-line
    errors), so the signature is marked as one MLflow does not enforce (its "from a type hint" switch): the scoring
    server then hands ``{"inputs": ...}`` over as parsed JSON instead of forcing it into one dense array, which a batch
    of different lengths is not. The schema is what the registry page shows.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, NUM_INPUT_COLUMNS), name="frames")]),
                               outputs=Schema([ColSpec("string", name="phrase")]))
    signature._is_signature_from_type_hint = True
    return signature


def input_example() -> np.ndarray:
    """One short sequence: ``EXAMPLE_FRAMES`` frames of values in [0, 1), the left hand missing (NaN)."""
    from aslfs.landmarks import SELECTED_COLUMNS

    frames = np.random.default_rng(0).random((EXAMPLE_FRAMES, NUM_INPUT_COLUMNS)).round(4).astype(np.float32)
    frames[:, [k for k, column in enumerate(SELECTED_COLUMNS) if "left_hand" in column]] = np.nan
    return frames


def pipeline_facts() -> dict[str, str]:
    """The training data and profile from the project's ``params.yaml`` (empty when there is none or it does not
    validate: the card then says nothing about them)."""
    from aslfs import tracking
    from aslfs.config import load_params
    from aslfs.errors import ConfigError

    path = tracking.project_root() / "params.yaml"
    try:
        params = load_params(path)
    except ConfigError:
        return {}
    facts = {"profile": params.profile, "data source": params.data.source}
    if params.data.source == "synth":
        facts["synthetic data"] = (f"{params.synth.sequences} sequences, {params.synth.participants} signers, "
                                   f"seed {params.synth.seed}")
    else:
        facts["raw data"] = str(params.data.raw_dir)
    r2 = params.train.round2
    facts["round 2"] = f"preset {r2.preset}, {r2.epochs} epochs, seeds {list(params.pipeline.round2_seeds)}"
    facts["held-out fold"] = str(params.pipeline.eval_fold)
    return facts


def _bullets(facts: dict) -> list[str]:
    def text(value):
        return ", ".join(f"`{v}`" for v in value) if isinstance(value, (list, tuple)) else value

    return [f"- **{key}**: {text(value)}" for key, value in facts.items() if value not in (None, "", [])]


def model_card(name: str, version: str, *, sha: str, size: int, run_id: str, facts: dict,
               pipeline: dict) -> str:
    """The version's description (Markdown)."""
    uri = f"models:/{name}/{version}"
    made = {"file": f"`model.tflite`, {size:,} bytes, sha256 `{sha[:16]}…`", "export run": f"`{run_id}`"}
    made.update({k: facts[k] for k in ("head", "members", "max_steps", "force_steps", "resize_mode") if k in facts})
    lines = [
        f"# {name} version {version}",
        "",
        "American Sign Language fingerspelling recognizer: MediaPipe landmark frames of one signed phrase in, the "
        "phrase out. A TFLite ensemble in the format of Google's ASL Fingerspelling Kaggle competition "
        "(a re-implementation of the winning model, docs/reference.md), run by the pyfunc on CPU.",
        "",
        "## The file",
        *_bullets(made),
        "",
        "## Training data and profile",
        *(_bullets(pipeline) or ["- not recorded (no `params.yaml` at export)"]),
        "",
        EVALUATION_HEADING,
        _NOT_EVALUATED,
        "",
        "## TFLite contract",
        f"- signature `serving_default`: input `inputs` float32 `[n_frames, {NUM_INPUT_COLUMNS}]`, the columns of "
        "`inference_args.json` (`selected_columns`) in that order, NaN for a missing landmark",
        "- output `outputs` float32 `[n_rows, 63]`: one row of character scores per output character (argmax; at "
        "most 32 rows); short or low-confidence inputs give the competition's fixed dummy phrase",
        "- signature `diagnostics` (when exported): the raw rows and the ensemble confidence",
        "",
        "## How to call it",
        "Python (frames: a float array `[n_frames, 390]`, or a list of them of any lengths):",
        "```python",
        "import mlflow",
        f'model = mlflow.pyfunc.load_model("{uri}")',
        "model.predict(frames)          # -> [phrase]",
        "model.predict([seq1, seq2])    # -> [phrase1, phrase2]",
        "```",
        "REST (one sequence, or a list of sequences; `null` for a missing value):",
        "```",
        f"aslfs serve {uri} --port 5001",
        "curl -s 127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\",
        "     -d '{\"inputs\": [[x0, ..., x389], ...]}'      # -> {\"predictions\": [\"phrase\"]}",
        "```",
        "Malformed input (wrong width, not a number, empty) is answered with HTTP 400 and a one-line message.",
    ]
    return "\n".join(lines) + "\n"


def evaluation_section(score: float, score_key: str, run) -> str:
    """The card's evaluation part: the score and, given the evaluation's MLflow run, its id and metric names."""
    lines = [EVALUATION_HEADING, f"- **{score_key}**: {score:.4f} (decides the `champion` alias)"]
    if run is not None:
        link = f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        lines.append(f"- evaluation run: [`{run.info.run_id}`]({link})")
        metrics = run.data.metrics
        if metrics:
            lines.append("- its metrics: " + ", ".join(f"`{k}` {metrics[k]:.4g}" for k in sorted(metrics)))
    return "\n".join(lines)


def with_evaluation(description: str, section: str) -> str:
    """``description`` with its evaluation section replaced by ``section`` (appended when it has none)."""
    start = description.find(EVALUATION_HEADING)
    if start < 0:
        return description.rstrip("\n") + "\n\n" + section + "\n"
    end = description.find("\n## ", start + len(EVALUATION_HEADING))
    tail = "" if end < 0 else description[end:]
    return description[:start] + section + "\n" + tail


def registered_model_description(name: str) -> str:
    """The registered model's description (the model page): what it is and where each version's card is."""
    return (f"# {name}\n\nASL fingerspelling recognizer: landmark frames float32 `[n_frames, 390]` in "
            "`inference_args.json` order → the phrase. Each version is one exported TFLite ensemble; its description "
            "is its model card (training data, held-out score, TFLite contract, how to call it). The alias "
            f"`champion` marks the best held-out score: `models:/{name}@champion`, served with "
            f"`aslfs serve models:/{name}@champion`.\n")
