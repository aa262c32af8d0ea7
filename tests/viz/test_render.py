"""Rendering: GIF frame count, contact sheet, visibly absent hands, the letters sheet and the CLI."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages import cli
from aslfs.config import SynthParams
from aslfs.data import kaggle_format as kf
from aslfs.data.synth import generate
from aslfs.errors import DataError
from aslfs.viz.render import FINGER_COLOURS, draw_frame, render_letters_sheet, render_sequence


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "raw"
    generate(out, SynthParams(sequences=6, seed=5, sequences_per_file=3, fast_fraction=0.0))
    meta = pd.read_csv(out / kf.TRAIN_CSV)
    return out, meta


def _finger_pixels(img: Image.Image) -> int:
    arr = np.asarray(img.convert("RGB")).reshape(-1, 3)
    return int(sum((arr == np.array(c)).all(axis=1).sum() for c in FINGER_COLOURS))


def test_gif_has_one_image_per_frame(data, tmp_path):
    out, meta = data
    sid = int(meta.sequence_id[0])
    n_frames = len(pd.read_parquet(out / meta.path[0]).loc[sid])
    report = render_sequence(out, sid, tmp_path / "s.gif", width=160)
    with Image.open(tmp_path / "s.gif") as gif:
        assert gif.is_animated and gif.n_frames == n_frames == report["frames"]
        assert gif.size[0] == 160


def test_contact_sheet(data, tmp_path):
    out, meta = data
    sid = int(meta.sequence_id[1])
    report = render_sequence(out, sid, tmp_path / "s.png", sheet=True, width=200, max_tiles=12, columns=4)
    with Image.open(tmp_path / "s.png") as png:
        assert png.format == "PNG" and report["images"] == 12
        assert png.size[0] == 4 * 100  # 4 tiles of half the width


def test_missing_hands_are_not_drawn():
    lm = np.full((543, 3), np.nan, np.float32)
    lm[:468] = [0.5, 0.3, 0.0]
    empty = draw_frame(lm, 200, 234)
    hand = np.stack([np.full(21, 0.3), np.linspace(0.5, 0.8, 21), np.zeros(21)], -1)
    lm[522:543] = hand
    drawn = draw_frame(lm, 200, 234)
    assert _finger_pixels(empty) == 0 < _finger_pixels(drawn)


def test_letters_sheet_real_beside_synthetic(data, tmp_path):
    out, _ = data
    report = render_letters_sheet(out, tmp_path / "letters.png", chars="abc.-0")
    assert report["chars"] == 6
    assert sum(report["synthetic_found"].values()) > 0
    with Image.open(tmp_path / "letters.png") as png:
        assert png.size[0] > 500


def test_letters_sheet_needs_alignment(tmp_path):
    with pytest.raises(DataError, match="alignment"):
        render_letters_sheet(tmp_path, tmp_path / "x.png")


def test_cli_render(data, tmp_path):
    out, meta = data
    sid = str(meta.sequence_id[0])
    assert cli.main(["render", str(out), "--sequence-id", sid, "--out", str(tmp_path / "c.png"), "--sheet"]) == 0
    assert (tmp_path / "c.png").is_file()
    assert cli.main(["render", str(out), "--sequence-id", "12345", "--out", str(tmp_path / "d.gif")]) == 2
