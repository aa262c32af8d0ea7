"""The evaluation's files (a DVC metrics file and the plot tables) and its terminal report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aslfs.atomic import write_csv, write_json


def write_outputs(summary: dict, table: pd.DataFrame, metrics_path: str | Path, out_dir: str | Path,
                  extra_metrics: dict | None = None) -> dict[str, Path]:
    """Write the DVC metrics file and the plot/report files; returns their paths by name.

    ``metrics_path`` (JSON, flat numbers): the metrics plus ``extra_metrics``. ``out_dir``: ``predictions.csv``,
    ``by_length.csv``, ``by_participant.csv``, ``confusions.csv`` (DVC plots read the CSVs).
    """
    out_dir = Path(out_dir)
    paths = {"metrics": write_json(metrics_path, {**summary["metrics"], **(extra_metrics or {})})}
    for name in ("by_length", "by_participant"):
        paths[name] = write_csv(out_dir / f"{name}.csv", summary[name], float_format="%.6f")
    confusions = pd.DataFrame(summary["confusions"], columns=["ref", "pred", "count", "kind"])
    paths["confusions"] = write_csv(out_dir / "confusions.csv", confusions)
    paths["predictions"] = write_csv(out_dir / "predictions.csv", table, float_format="%.6f")
    return paths


def format_report(result: dict) -> str:
    """A few lines for the terminal."""
    m = result["metrics"]
    lines = [f"{m['sequences']} held-out sequences: score {m['score']:.4f} (CER {m['cer']:.4f}, Damerau "
             f"{m['score_dl']:.4f}); after post-processing {m['score_pp']:.4f} "
             f"({100 * m['dummy_fraction']:.1f}% dummy); {1000 * m['seconds_per_sequence']:.0f} ms per sequence"]
    if m.get("trained_on_heldout"):
        lines.append("note: some ensemble members were trained on these sequences; the score is optimistic")
    reg = result.get("registry")
    if reg:
        state = "now champion" if reg.get("alias") else f"champion stays version {reg.get('champion_version')}"
        lines.append(f"registry: {reg['name']} version {reg['version']} ({reg['score_key']} {reg['score']:.4f}; {state})")
    lines.append(f"metrics: {result['files']['metrics']}")
    return "\n".join(lines)
