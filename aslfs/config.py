"""Typed parameters: one pydantic model per ``params.yaml`` section, validated once by :func:`load_params`.

Every tunable value of the pipeline lives in ``params.yaml``; stages read their section through these models and set
no defaults of their own. Unknown keys and wrong types are errors (one line naming the key), never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aslfs.errors import ConfigError
from aslfs.models.config import ModelOverrides


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
    #: Detection-loss strength, the one knob for how often the dominant hand is lost: the mean fraction of frames
    #: lost in bursts (MediaPipe dropouts; per signer and per recording it varies widely, up to 0.9, so that some
    #: recordings keep only a few hand frames). Frames where the hand is outside the image are lost on top of it.
    #: Lower it if the demo model learns too little from the remaining frames.
    hand_dropout: float = Field(0.3, ge=0.0, lt=1.0)
    #: Signing speed: every hold and transition lasts 1/speed of the generator's base timing (holds of 3-6 frames,
    #: transitions of 1.8-3.4 frames on average per signer, varying by recording and by letter).
    speed: float = Field(1.85, gt=0.0)
    #: Fraction of signers who sign with the left hand.
    left_handed_fraction: float = Field(0.25, ge=0.0, le=1.0)
    #: Fraction of hurried, clipped recordings (holds of 1-2 frames, no rest): the short tail of the real corpus.
    fast_fraction: float = Field(0.02, ge=0.0, le=1.0)
    #: Worker processes (one parquet file at a time each); the output does not depend on it.
    workers: int = Field(1, ge=1)


class SelectParams(Section):
    """Raw → selected store."""

    #: What to do with a sequence that cannot be used (empty, absent from its parquet, phrase outside the vocabulary):
    #: ``error`` stops with one line naming file and sequence; ``skip`` leaves it out and counts it in the report.
    on_invalid: Literal["error", "skip"] = "skip"
    #: Worker processes for reading parquet files (one file at a time per worker). Does not change the output.
    workers: int = Field(1, ge=1)
    #: Longest phrase kept, in characters (train.csv's longest is 31; longer phrases are invalid, see on_invalid).
    max_phrase_len: int = Field(31, ge=1)


class FoldsParams(Section):
    """Participant-grouped fold split."""

    n_folds: int = Field(4, ge=2)
    seed: int = 42


class AugmentParams(Section):
    """Training augmentation (docs/reference.md §3; ``aslfs.data.augment.build_augmentation``).

    Defaults reproduce the reference exactly, quirks included; each ``*_fixed`` / switch fixes one documented QUIRK.
    """

    #: Flip probability (§3.1).
    flip_p: float = Field(0.5, ge=0.0, le=1.0)
    #: Outer CutMix probability (§3.2); the partner is another sequence of the same participant.
    cutmix_p: float = Field(0.5, ge=0.0, le=1.0)
    #: Probability that a sample goes through the round's augmentation list (§3.11) at all. 1.0 = the reference
    #: (always); lower values (beyond the reference) let a short training, such as the CPU demo, converge.
    list_p: float = Field(1.0, ge=0.0, le=1.0)
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
    #: Score of supplemental rows (§1.8), in the OOF table and in round-2 training; OOF scores are clipped to [0, 1].
    supplemental_score: float = Field(0.5, ge=0.0, le=1.0)
    #: Supplemental rows with longer phrases are left out of the OOF table and of round-2 training (reference:
    #: phrase_len < 33).
    max_supplemental_phrase_len: int = Field(32, ge=1)
    #: §4.9 QUIRK: backward labels are padded with id 0 to the batch's longest target; True pads with 59 to 33.
    backward_pad_fixed: bool = False


class ExportParams(Section):
    """Ensemble + TFLite export (``aslfs.export``, docs/reference.md §7; the time resize follows ``sampling.resize_mode``)."""

    #: Greedy decoding steps = output slots (33: up to 32 characters + end, as the reference).
    max_steps: int = Field(33, ge=2)
    #: Stop decoding once the end id is produced (False always runs ``max_steps`` steps).
    early_stop: bool = True
    #: Post-processing (§6.2): fewer raw frames than this → the dummy phrase "2 a-e -aroe". Training's ``score_pp``
    #: applies the same rule (this value and ``confidence_threshold``) to its validation predictions.
    min_frames: int = Field(15, ge=0)
    #: Post-processing (§6.2, round 2): ensemble confidence (sigmoid of the averaged logits) below this → dummy phrase.
    confidence_threshold: float = Field(0.15, ge=0.0, le=1.0)
    #: The head the exported graph decodes with: ``attention`` (greedy, averaged decoder logits, KV cache: the
    #: reference) or ``ctc`` (greedy CTC on the averaged CTC log-probabilities; needs members trained with
    #: ``model.ctc_head``).
    head: Literal["attention", "ctc"] = "attention"
    #: Greedy decoding: count a fed-back pad token in later position ids, as the reference's cached TensorFlow port
    #: does (docs/reference.md §7.2). Off: positions count non-pad tokens, as in training and the full pass.
    count_pad_positions: bool = False
    #: Add the ``diagnostics`` signature (raw rows + confidence, same weights) used by evaluate for the raw score.
    diagnostics: bool = True
    #: Fail when model.tflite is larger (the competition's limit: 40 MB).
    max_megabytes: float = Field(40.0, gt=0.0)
    #: Register the exported file in the MLflow Model Registry.
    register_model: bool = True
    #: Registered model name.
    model_name: str = "asl-fingerspelling"


class EvaluateParams(Section):
    """Held-out evaluation of the exported TFLite file (``aslfs.evaluate``)."""

    #: Interpreter threads (2 = the Kaggle CPU kernel).
    threads: int = Field(2, ge=1)
    #: Evaluate at most this many held-out sequences (0 = all), taken in index order.
    max_sequences: int = Field(0, ge=0)
    #: Lower edges (frames) of the sequence-length bins of the length breakdown.
    length_bins: list[int] = [0, 50, 100, 150, 200, 300, 384]
    #: How many of the most frequent character confusions to report.
    top_confusions: int = Field(20, ge=1)
    #: Metric that decides the registry's ``champion`` alias (higher is better).
    champion_metric: Literal["score_pp", "score"] = "score_pp"
    #: Move the ``champion`` alias to the evaluated version when it beats the current champion.
    promote: bool = True


class TrainRoundParams(Section):
    """Training settings of one round (docs/reference.md §5; ``aslfs.training.trainer.train_model``).

    Defaults are the kaggle-1st recipe of round 1 (cfg_1); ``TrainParams.round2`` overrides the round-2 values.
    """

    #: Model preset (``aslfs.models.config.PRESETS``) and field overrides (any ``ModelConfig`` field, typed; the
    #: preset with its overrides is built, and so checked, when the file is loaded).
    preset: str = "kaggle-1st-round1"
    model_overrides: ModelOverrides = ModelOverrides()
    epochs: int = Field(300, ge=1)
    #: Micro-batch size; the optimizer steps every ``grad_accum`` micro-batches (effective batch = product).
    batch_size: int = Field(64, ge=1)
    grad_accum: int = Field(8, ge=1)
    peak_lr: float = Field(4.5e-3, gt=0.0)
    #: AdamW decoupled weight decay, applied to every trainable parameter (no exclusions, as the reference).
    weight_decay: float = Field(0.05, ge=0.0)
    #: Linear warm-up from 0 over this many epochs, then half cosine to 0 at the last epoch (stepped per micro-batch).
    warmup_epochs: float = Field(10.0, ge=0.0)
    #: Training rows with fewer raw frames are dropped (round 1: 15; validation is never filtered).
    min_seq_len: int = Field(15, ge=0)
    #: ``auto``: mixed_float16 when a GPU is present; ``on``/``off`` force it.
    mixed_precision: Literal["auto", "on", "off"] = "off"
    #: Evaluate (greedy decoding of the validation fold) every this many epochs, and after the last one.
    eval_every: int = Field(10, ge=1)
    #: Fine-tuning: start from the weights of this model instead of a random initialisation: a ``.keras`` file (a
    #: reference checkpoint imported with ``aslfs import-checkpoint``) or a run folder. Its architecture must be this
    #: round's (``preset`` + ``model_overrides``); the optimizer and schedule start fresh. A relative path is taken
    #: from the working directory (the project root under dvc); the file's bytes are part of the run's identity (resume, data version). null = random.
    init_weights: str | None = None

    def architecture(self):
        """The :class:`~aslfs.models.config.ModelConfig` of this round: ``preset`` with ``model_overrides``."""
        from aslfs.models.config import config_from_params

        return config_from_params({"preset": self.preset, **self.model_overrides.model_dump()}, "model")

    @model_validator(mode="after")
    def _architecture_builds(self):
        try:
            self.architecture()  # an unknown preset or an impossible combination fails at load time
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return self


class TrainParams(Section):
    """Training (``stages/train.py``): per-round recipe plus settings shared by both rounds."""

    round1: TrainRoundParams = TrainRoundParams()
    round2: TrainRoundParams = TrainRoundParams(preset="kaggle-1st-round2", epochs=400, weight_decay=0.08,
                                                min_seq_len=1, mixed_precision="auto")
    beta_1: float = Field(0.9, ge=0.0, lt=1.0)
    beta_2: float = Field(0.999, ge=0.0, lt=1.0)
    epsilon: float = Field(1e-8, gt=0.0)
    #: Global-norm clipping of the accumulated gradient (0 = off).
    clipnorm: float = Field(4.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    #: Round-2 loss = (1 − confidence_weight)·((1 − backward_weight)·CE_fwd + backward_weight·CE_bwd)
    #: + confidence_weight·BCE (reference: 0.4 and 0.02 → 0.98·(0.6·CE_fwd + 0.4·CE_bwd) + 0.02·BCE).
    backward_weight: float = Field(0.4, ge=0.0, le=1.0)
    confidence_weight: float = Field(0.02, ge=0.0, le=1.0)
    #: Joint CTC: total = (1 − ctc_weight)·attention loss + ctc_weight·CTC (needs a model with ``ctc_head``).
    ctc_weight: float = Field(0.0, ge=0.0, le=1.0)
    #: Length bucketing (beyond the reference): batches of similar lengths padded to the smallest bucket ≥ their
    #: longest sample; False pads every batch to max_len.
    bucketing: bool = True
    buckets: list[int] = Field(default_factory=lambda: [96, 160, 256, 384])
    #: Batches per length-sorting window when bucketing.
    bucket_window: int = Field(32, ge=1)
    #: Data-loading workers (keras PyDataset); processes when use_multiprocessing, else threads; 0 = main thread.
    workers: int = Field(2, ge=0)
    #: Worker processes (True) or threads. Threads stop scaling near 1,300 samples/s at the recipe's shapes (the
    #: GIL; 16-core host, BENCHMARKS.md); processes scale with ``worker_transport: shared_memory``.
    use_multiprocessing: bool = True
    #: How worker processes hand batches over: ``shared_memory`` (the loader's own pool of spawned processes, each
    #: batch written once into a shared-memory slot and taken without a copy; scales with the workers, on JAX too;
    #: needs ``/dev/shm`` room for max_queue_size + 2 batches) or ``keras`` (Keras' pool, each batch pickled
    #: through a pipe; about 700 samples/s at most on a 16-core host, and threads instead on JAX).
    worker_transport: Literal["keras", "shared_memory"] = "shared_memory"
    max_queue_size: int = Field(8, ge=1)
    #: Batch size of validation decoding.
    eval_batch_size: int = Field(64, ge=1)
    #: §6.1 QUIRK of the reference's PyTorch validation: a prediction without an end token counts as empty.
    #: False keeps its characters (what the exported model does).
    empty_without_end: bool = False
    #: Training filter (the 12th-place cleaning rule, whose value was 2): keep a training row only when more than
    #: this many frames per phrase character show a hand (a frame counts when any hand landmark was detected).
    #: Sequences where the detector lost the hand for most letters teach noise. Validation and OOF rows are never
    #: filtered. 0 = off (the winning recipe).
    min_hand_frames_per_char: float = Field(0.0, ge=0.0)
    #: Data-parallel training on one host (``aslfs.training.distribution``): ``off``, ``data_parallel`` (over
    #: ``devices`` accelerators, or CPU devices when there is none) or ``auto`` (data_parallel when more than one
    #: accelerator is visible, else off). ``batch_size`` stays the global micro-batch (per device: batch_size /
    #: devices, which must divide) and batch_size × grad_accum the global batch; schedule, warm-up, clipping and
    #: BatchNorm statistics are those of the global batch.
    distribution: Literal["auto", "off", "data_parallel"] = "auto"
    #: Devices of ``data_parallel`` / ``auto`` (0 = all visible).
    devices: int = Field(0, ge=0)
    #: keras ``jit_compile``: ``auto`` (XLA on GPU / JAX), ``on``, ``off``.
    jit_compile: Literal["auto", "on", "off"] = "auto"
    steps_per_execution: int = Field(1, ge=1)
    #: Keras fit verbosity (0 silent, 1 progress bar, 2 one line per epoch).
    verbose: int = Field(2, ge=0, le=2)


class OofParams(Section):
    """Out-of-fold confidence targets (``stages/oof.py``, docs/reference.md §1.8)."""

    #: Where the round-1 predictions come from: each run's ``val_predictions.csv`` (its last evaluation, as the
    #: reference's validation dumps) or a fresh greedy decode with its ``model.keras``.
    source: Literal["predictions", "model"] = "predictions"
    #: Batch size of the validation decoding (``source: model``).
    batch_size: int = Field(64, ge=1)
    #: See ``TrainParams.empty_without_end``.
    empty_without_end: bool = False
    #: Score of the rows of folds with no round-1 run (e.g. the fold round 2 holds out, which it never reads);
    #: None = such a fold is an error. The reference's default for a missing score is 1.0 (docs/reference.md §1.8).
    missing_fold_score: float | None = None


class PipelineParams(Section):
    """The shape of the pipeline: which trainings run (``dvc.yaml`` expands these lists with ``foreach``)."""

    #: Round-1 folds trained (each model predicts its own fold for the OOF targets). The reference trains all 4;
    #: folds whose OOF scores nothing reads may be left out (rows without a score count as 1.0, reference §1.8).
    round1_folds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3])
    round1_seed: int = 1
    #: Round-2 fold: k ≥ 0 trains on the other folds and holds fold k out; −1 = full fit (the reference's final runs).
    round2_fold: int = -1
    #: Round-2 seeds, one training each; the export ensembles them (the reference: two full-fit seeds).
    round2_seeds: list[int] = Field(default_factory=lambda: [1, 2])
    #: Fold the evaluate stage scores (held-out participants when round2_fold is the same fold).
    eval_fold: int = 0
    #: Stages of one level (round-1 folds, round-2 seeds) run at once by ``aslfs demo`` (each its own process, the
    #: CPU threads divided between them). No stage reads it, so changing it reruns nothing. 1 = one at a time (one
    #: GPU); the pipeline flow takes its own ``--max-workers``.
    jobs: int = Field(default=1, ge=1)


class Params(Section):
    """The whole ``params.yaml``."""

    #: Which recipe this file holds (``aslfs profile NAME`` rewrites params.yaml from a profile; informational).
    profile: str = "demo"
    data: DataParams = DataParams()
    synth: SynthParams = SynthParams()
    select: SelectParams = SelectParams()
    folds: FoldsParams = FoldsParams()
    augment: AugmentParams = AugmentParams()
    sampling: SamplingParams = SamplingParams()
    train: TrainParams = TrainParams()
    oof: OofParams = OofParams()
    pipeline: PipelineParams = PipelineParams()
    export: ExportParams = ExportParams()
    evaluate: EvaluateParams = EvaluateParams()


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
    """Read and validate ``params.yaml``: the one way parameters are loaded. A missing file, invalid YAML, an unknown
    section or key and a wrong type are each a :class:`ConfigError` naming the file (an empty file means defaults)."""
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


def with_overrides(section: Section, name: str, **changes) -> Section:
    """``section`` (the params section ``name``) with the non-``None`` ``changes`` applied, validated like the file
    (command-line overrides such as ``--n-folds``); a bad value is a :class:`ConfigError` naming ``name.key``."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return section
    try:
        return type(section).model_validate({**section.model_dump(), **changes})
    except ValidationError as err:
        raise ConfigError(_format_error(name, err).replace(f"{name}: ", f"{name}.", 1)) from None
