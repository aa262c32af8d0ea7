"""Typed parameters: one pydantic model per ``params.yaml`` section, validated once by :func:`load_params`.

Every tunable value of the pipeline lives in ``params.yaml``; stages read their section through these models and set
no defaults of their own. Unknown keys and wrong types are errors (one line naming the key), never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aslfs.errors import ConfigError


class Section(BaseModel):
    """Base of every params section: unknown keys are rejected, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DataParams(Section):
    """Where the raw competition-format data comes from."""

    source: Literal["synth", "raw"] = "synth"
    #: Competition-format directory (train.csv, supplemental_metadata.csv, *_landmarks/*.parquet) when source = raw.
    raw_dir: str = "data/raw"


class SynthParams(Section):
    """The embedded dataset generator (``aslfs synth``)."""

    sequences: int = Field(3000, ge=1)
    seed: int = 0
    participants: int = Field(24, ge=2)
    #: Fraction of sequences written as supplemental (sentences) rather than train (addresses, phones, URLs).
    supplemental_fraction: float = Field(0.3, ge=0.0, le=1.0)
    #: Sequences per parquet file (the real corpus has about 1,000).
    sequences_per_file: int = Field(250, ge=1)
    #: Fraction of frames in which the dominant hand is missing (MediaPipe dropouts, in bursts).
    hand_dropout: float = Field(0.08, ge=0.0, lt=1.0)
    #: Fraction of signers who sign with the left hand.
    left_handed_fraction: float = Field(0.25, ge=0.0, le=1.0)


class SelectParams(Section):
    """Raw → selected store."""

    #: What to do with a sequence that cannot be used (empty, absent from its parquet, phrase outside the vocabulary):
    #: ``error`` stops with one line naming file and sequence; ``skip`` leaves it out and counts it in the report.
    on_invalid: Literal["error", "skip"] = "skip"
    #: Worker processes for reading parquet files (one file at a time per worker).
    workers: int = Field(1, ge=1)


class FoldsParams(Section):
    """Participant-grouped fold split."""

    n_folds: int = Field(4, ge=2)
    seed: int = 42


class Params(Section):
    """The whole ``params.yaml``."""

    data: DataParams = DataParams()
    synth: SynthParams = SynthParams()
    select: SelectParams = SelectParams()
    folds: FoldsParams = FoldsParams()


def _format_error(path: str, err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    return f"{path}: {key}: {first['msg']}"


def parse_params(raw: dict, source: str = "params") -> Params:
    """Validate a params mapping; raises :class:`ConfigError` with one line naming the offending key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(_format_error(source, err)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: parameter file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return parse_params(raw, str(path))


class AugmentParams(Section):
    """Training augmentation (reference-spec §3; ``aslfs.data.augment.build_augmentation``).

    Defaults reproduce the reference exactly, quirks included; each ``*_fixed`` / switch fixes one documented QUIRK.
    """

    #: Flip probability (§3.1).
    flip_p: float = Field(0.5, ge=0.0, le=1.0)
    #: Outer CutMix probability (§3.2); the partner is another sequence of the same participant.
    cutmix_p: float = Field(0.5, ge=0.0, le=1.0)
    #: Decoder-input masking (§3.12): each of the 33 target positions becomes id 62 with this probability.
    decoder_mask_p: float = Field(0.2, ge=0.0, le=1.0)
    #: §3.10 QUIRK: the reference SpatialMask is a no-op; True masks a box of 5–10 % of the x/y extent.
    spatial_mask_fixed: bool = False
    #: §3.7 QUIRK: FingersDrop unions 12 draws (4–10 fingers); True drops 2–5 distinct fingers.
    fingers_drop_fixed: bool = False
    #: §3.7 QUIRK: OnWindows tests p twice (0.5625); True tests it once (0.75).
    on_windows_single_check: bool = False
    #: §3.9 QUIRK: TemporalMask counts are exactly 1, 2, 4; True draws 1–2, 2–3, 4–5.
    temporal_mask_inclusive_counts: bool = False
    #: §3.8 QUIRK: a forced OneOf still applies its own p; True honours the force (inner body-part OneOf always fires).
    one_of_force_fixed: bool = False
    #: Option (not a reference quirk): SpatialAffine keeps landmarks with x = y = 0 (missing) at 0.
    affine_keep_missing: bool = False


class SamplingParams(Section):
    """Per-sample pipeline (``aslfs.data.sample``): resize/pad, targets and round-2 epoch sampling."""

    #: Frames per training sample (§2.2): longer sequences are resized in time, shorter ones zero-padded.
    max_len: int = Field(384, ge=1)
    #: Time resize for T > max_len, used by training and by the exported graph: ``linear`` (half-pixel-centre linear,
    #: = tf.image.resize bilinear without antialias) or ``nearest`` (the reference training code, frame ⌊i·T/max_len⌋).
    resize_mode: Literal["linear", "nearest"] = "linear"
    #: Score of supplemental rows (§1.8); OOF scores are clipped to [0, 1].
    supplemental_score: float = Field(0.5, ge=0.0, le=1.0)
    #: §4.9 QUIRK: backward labels are padded with id 0 to the batch's longest target; True pads with 59 to 33.
    backward_pad_fixed: bool = False
