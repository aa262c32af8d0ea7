"""Training run directories: the output folder of one training (``model.keras``, ``metrics.json``, ``history.csv``,
``val_predictions.csv``, ``checkpoint/``). Stages that consume several runs (OOF, export, evaluate) accept run
directories or folders of them, so ``dvc.yaml`` can pass ``models/round2`` whatever the number of seeds."""

from __future__ import annotations

from pathlib import Path

from aslfs.errors import AslfsError

MODEL_FILE = "model.keras"


def expand_run_dirs(paths) -> list[Path]:
    """Each path is a run directory (has ``model.keras``) or a folder whose sub-folders are; sorted, de-duplicated."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / MODEL_FILE).is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted(d for d in p.iterdir() if (d / MODEL_FILE).is_file())
            if not found:
                raise AslfsError(f"{p}: no training run here (no {MODEL_FILE} in it or in its sub-folders)")
            out.extend(found)
        else:
            raise AslfsError(f"{p}: training run directory not found")
    return list(dict.fromkeys(out))
