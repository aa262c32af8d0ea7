"""``aslfs synth-stats``: the hand statistics on a hand-built directory with known answers, and the embedded dataset
(demo generator settings, fewer sequences) against the real recordings' band (issue 16's table)."""

import json

import numpy as np
import pandas as pd
import pytest

from stages import cli
from aslfs.config import SynthParams
from aslfs.data import hand_stats
from aslfs.data import kaggle_format as kf
from aslfs.data.synth import generate
from aslfs.errors import DataError
from aslfs.landmarks import ALL_COLUMNS
from aslfs.profiles import render_params

#: Real competition recordings (31 sequences, 11 signers; issue 16): statistic -> (p10, median, p90).
REAL = {
    "hand_size": (0.120, 0.152, 0.200),
    "wrist_y": (0.665, 0.766, 0.899),
    "wrist_x": (0.194, 0.329, 0.667),
    "fingertip_motion": (0.041, 0.146, 0.461),
    "wrist_motion": (0.023, 0.114, 0.452),
    "z_range": (0.63, 1.00, 1.89),
    "visible_per_char": (1.05, 3.91, 7.85),
}
TIPS = (4, 8, 12, 16, 20)


def _hand(wrist, size, tips_rel, z=None) -> np.ndarray:
    """(21, 3): every point at the wrist except the middle MCP (``size`` above it) and the fingertips."""
    pts = np.zeros((21, 3), np.float32)
    pts[:, :2] = wrist
    pts[9, :2] = (wrist[0], wrist[1] - size)
    for i in TIPS:
        pts[i, :2] = np.add(wrist, tips_rel)
    for i, v in (z or {}).items():
        pts[i, 2] = v
    return pts


def _frames(hands: list[dict]) -> np.ndarray:
    """(T, 1629) NaN frames with the given hands ({"left_hand"/"right_hand": (21, 3)}) filled in."""
    out = np.full((len(hands), len(ALL_COLUMNS)), np.nan, np.float32)
    pos = {c: i for i, c in enumerate(ALL_COLUMNS)}
    for t, frame in enumerate(hands):
        for side, pts in frame.items():
            for a, axis in enumerate("xyz"):
                out[t, [pos[f"{axis}_{side}_{i}"] for i in range(21)]] = pts[:, a]
    return out


# Sequence 1 ("ab"): right hand in frames 0, 1, 3 (lost in frame 2), left hand only in frame 0 -> right dominant.
#   hand sizes 0.1, 0.1, 0.2; wrist (0.5, 0.8), (0.53, 0.84), (0.53, 0.79); z ranges 0.1/0.1, 0, 0.06/0.2
#   pair 0-1: wrist moves 0.05 / 0.1 = 0.5, tips (relative) move 0.03 / 0.1 = 0.3
#   pair 1-3 (across the gap): wrist 0.05 / 0.15 = 1/3, tips 0.06 / 0.15 = 0.4
SEQ1 = [
    {"right_hand": _hand((0.5, 0.8), 0.1, (0.0, -0.2), {4: 0.05, 20: -0.05}),
     "left_hand": _hand((0.9, 0.9), 0.1, (0.0, -0.1))},
    {"right_hand": _hand((0.53, 0.84), 0.1, (0.03, -0.2))},
    {},
    {"right_hand": _hand((0.53, 0.79), 0.2, (0.03, -0.26), {4: 0.06})},
]
# Sequence 2 ("abcd"): a left-handed signer, two still frames.
SEQ2 = [{"left_hand": _hand((0.2, 0.7), 0.1, (0.0, -0.2))}] * 2


@pytest.fixture()
def tiny(tmp_path):
    for csv_name, folder, sid, phrase, seq in ((kf.TRAIN_CSV, kf.TRAIN_DIR, 11, "ab", SEQ1),
                                               (kf.SUPPLEMENTAL_CSV, kf.SUPPLEMENTAL_DIR, 22, "abcd", SEQ2)):
        kf.write_landmark_file(tmp_path / folder / f"{sid}0.parquet", [(sid, _frames(seq))])
        kf.write_metadata_csv(tmp_path / csv_name, pd.DataFrame(
            [(f"{folder}/{sid}0.parquet", sid * 10, sid, 5, phrase)], columns=list(kf.CSV_COLUMNS)))
    return tmp_path


def test_sequence_measures_golden():
    cols = [ALL_COLUMNS.index(c) for c in hand_stats.HAND_COLUMNS]
    m = hand_stats.sequence_measures(_frames(SEQ1)[:, cols], 2)
    assert m["hand_size"] == pytest.approx([0.1, 0.1, 0.2], abs=1e-6)
    assert m["wrist_y"] == pytest.approx([0.8, 0.84, 0.79], abs=1e-6)
    assert m["wrist_x"] == pytest.approx([0.5, 0.53, 0.53], abs=1e-6)
    assert m["z_range"] == pytest.approx([1.0, 0.0, 0.3], abs=1e-5)
    assert m["fingertip_motion"] == pytest.approx([0.3, 0.4], abs=1e-5)
    assert m["wrist_motion"] == pytest.approx([0.5, 1 / 3], abs=1e-5)
    assert m["visible_per_char"] == pytest.approx([1.5])


def test_dataset_stats_golden_and_cli(tiny, capsys):
    stats = hand_stats.dataset_stats(tiny)
    assert (stats["sequences"], stats["participants"]) == (2, 1)
    rows = stats["rows"]
    # pooled: sizes 0.1 0.1 0.2 | 0.1 0.1 -> p90 at rank 3.6 of 4 = 0.16
    assert [rows["hand_size"][k] for k in ("p10", "median", "p90")] == pytest.approx([0.1, 0.1, 0.16], abs=1e-6)
    assert rows["hand_size"]["n"] == 5
    assert rows["wrist_y"]["median"] == pytest.approx(0.79, abs=1e-6)  # 0.7 0.7 0.79 0.8 0.84
    assert rows["fingertip_motion"]["median"] == pytest.approx(0.3, abs=1e-5)  # 0 | 0.3 0.4
    assert rows["wrist_motion"]["median"] == pytest.approx(1 / 3, abs=1e-5)  # 0 | 1/3 0.5
    assert rows["z_range"]["median"] == pytest.approx(0.0, abs=1e-6)  # 0 0 | 0 0.3 1
    assert rows["visible_per_char"]["median"] == pytest.approx(1.0)  # 1.5 and 0.5
    assert hand_stats.dataset_stats(tiny, max_sequences=1)["rows"]["visible_per_char"]["n"] == 1

    assert cli.main(["synth-stats", str(tiny), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]["visible_per_char"]["p90"] == pytest.approx(1.4)
    assert cli.main(["synth-stats", str(tiny)]) == 0
    table = capsys.readouterr().out
    assert "| hand size | 0.100 | 0.100 | 0.160 | 5 |" in table


def test_bad_input_is_one_line_naming_the_file(tiny, capsys):
    (tiny / kf.TRAIN_DIR / "110.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"110\.parquet: not a readable parquet file"):
        hand_stats.dataset_stats(tiny)
    assert cli.main(["synth-stats", str(tiny)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aslfs synth-stats: error: ") and "110.parquet" in err and "\n" not in err
    kf.write_landmark_file(tiny / kf.TRAIN_DIR / "110.parquet", [(99, _frames(SEQ2))])
    with pytest.raises(DataError, match=r"110\.parquet: sequence 11 is listed in the metadata but has no rows"):
        hand_stats.dataset_stats(tiny)
    assert cli.main(["synth-stats", str(tiny / "nowhere")]) == 2
    assert cli.main(["synth-stats", str(tiny), "--max-sequences", "0"]) == 2


def test_embedded_data_lies_in_the_real_band(tmp_path):
    """The demo's generator settings (fewer sequences): every statistic's median within the real p10-p90."""
    demo = render_params("demo").synth
    params = SynthParams(**{**demo.model_dump(), "sequences": 48, "workers": 1})
    generate(tmp_path / "d", params)
    rows = hand_stats.dataset_stats(tmp_path / "d")["rows"]
    outside = {k: (round(rows[k]["median"], 3), REAL[k]) for k in REAL
               if not REAL[k][0] <= rows[k]["median"] <= REAL[k][2]}
    assert not outside, f"medians outside the real p10-p90 band: {outside}"


def test_generator_defaults_match_the_real_medians(tmp_path):
    """The generator's defaults (``synth.speed`` 1.85, ``synth.hand_dropout`` 0.3; the demo profile signs slower
    and loses the hand less) put every median within 15 % of the real one (48 sequences: 0.137-0.153 hand size,
    3.96-4.27 visible frames per character over seeds 0 and 1)."""
    params = SynthParams(**{**SynthParams().model_dump(), "sequences": 48, "workers": 1, "participants": 16})
    generate(tmp_path / "d", params)
    rows = hand_stats.dataset_stats(tmp_path / "d")["rows"]
    off = {k: (round(rows[k]["median"], 3), REAL[k][1]) for k in REAL
           if abs(rows[k]["median"] - REAL[k][1]) > 0.15 * REAL[k][1]}
    assert not off, f"medians more than 15 % from the real ones: {off}"
