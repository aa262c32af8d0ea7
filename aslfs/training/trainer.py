"""Training one model: ``train_model(round, fold, seed, ...)`` (docs/reference.md §5).

One call trains one (round, fold, seed): fold ``k`` ≥ 0 trains on the other folds and validates on fold ``k``; fold
−1 is a full fit that validates on fold 0 (which it also trains on), as the reference.

**Data** (§1.6, §1.8, §1.9). Rows = the folds table joined to the normalised store's index on ``sequence_id``.
Round 1: training rows are the non-supplemental rows of the other folds with at least ``min_seq_len`` raw frames;
CutMix partners come from the same rows. Round 2: training rows are all rows of the other folds (supplemental rows
with phrases of at most 32 characters included) with their OOF ``score`` (clipped to [0, 1], supplemental rows
``sampling.supplemental_score``); each epoch holds every non-supplemental row plus one random row per supplemental
phrase; CutMix partners come from the whole training table. Validation rows are the non-supplemental rows of the
validation fold, unfiltered.

**Optimisation.** ``keras.optimizers.AdamW`` (decoupled weight decay on every parameter, β 0.9/0.999, ε 1e-8),
global-norm clipping of the accumulated gradient, ``gradient_accumulation_steps = grad_accum`` (the optimizer
averages the micro-batch gradients and steps every ``grad_accum`` micro-batches), and the warm-up + cosine schedule
of :mod:`aslfs.training.schedule`, evaluated per micro-batch. Keras' ε is added to √v̂ after bias correction of m
only ("epsilon hat"); PyTorch adds it to √v̂ after both corrections — the same up to a factor √(1 − β₂ᵗ) on ε, which
only matters in the first few hundred steps and not at all at ε = 1e-8. Mixed precision (``mixed_float16``) wraps the
optimizer in Keras' dynamic ``LossScaleOptimizer``: like PyTorch's ``GradScaler`` it skips a micro-step whose
gradients are not finite (here that micro-step is also not counted by the schedule).

**Outputs** under ``out_dir``::

    checkpoint/last.keras, checkpoint/state.json   every epoch, atomically (resume point)
    model.keras          the trained FingerSpeller (no optimizer): what export loads
    metrics.json         last evaluation + run facts (round, fold, seed, epochs, best score, MLflow run id, ...)
    val_predictions.csv  last evaluation: sequence_id, phrase, prediction, seq_len, confidence, prediction_pp
    history.csv          one row per epoch: lr and training losses; evaluation metrics on evaluation epochs

**Resume.** If ``checkpoint/`` holds a complete checkpoint of the *same* run (same resolved config, data and seed:
``state.json`` records their hash) the run continues at the next epoch with the saved weights and optimizer state, in
the same MLflow run; a checkpoint of another configuration is discarded and training starts over. The batches do not
depend on the resume (loader randomness is a function of seed, epoch and batch index).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from aslfs import atomic, runs
from aslfs.errors import ConfigError, DataError
from aslfs.training import checkpoint as ckpt
from aslfs.training.losses import LossConfig
from aslfs.vocab import MAX_TARGET_LEN

MAX_SUPPLEMENTAL_PHRASE_LEN = MAX_TARGET_LEN - 1  # 32: supplemental rows with phrase_len < 33 (§1.6)


@dataclass
class TrainResult:
    """What :func:`train_model` did."""

    out_dir: Path
    metrics: dict
    epochs_done: int
    seed: int
    mlflow_run_id: str | None = None
    resumed_from_epoch: int | None = None
    history: list[dict] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------------------ data
def _read_csv(path, what: str, required: tuple[str, ...]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    df = pd.read_csv(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path}: {what} lacks column(s) {', '.join(missing)}")
    return df


def read_folds(folds_csv) -> pd.DataFrame:
    return _read_csv(folds_csv, "folds table", ("sequence_id", "fold"))


def read_oof(oof_csv) -> pd.DataFrame:
    return _read_csv(oof_csv, "OOF table", ("sequence_id", "score"))


def build_tables(index: pd.DataFrame, folds: pd.DataFrame, round: int, fold: int, min_seq_len: int = 15,
                 oof: pd.DataFrame | None = None, supplemental_score: float = 0.5,
                 max_supplemental_phrase_len: int = MAX_SUPPLEMENTAL_PHRASE_LEN
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(train, partners, validation)`` loader tables for one (round, fold) (module docstring).

    Args:
        index: the store index (``sequence_id, participant_id, phrase, seq_len, is_supplemental``); its row
            positions are the ``store_pos`` of the tables.
        folds: ``sequence_id, fold`` (``is_supplemental`` / ``participant_id`` are taken from the store).
        round, fold: fold −1 = full fit, validated on fold 0.
        min_seq_len: training rows with fewer raw frames are dropped.
        oof: round 2: ``sequence_id, score`` (the OOF table).
        supplemental_score: round-2 score of supplemental rows.
        max_supplemental_phrase_len: round 2 keeps supplemental rows with phrases up to this length.
    """
    from aslfs.data.sample import score_column

    if round not in (1, 2):
        raise ConfigError(f"train: round must be 1 or 2, got {round}")
    df = index.reset_index(drop=True).copy()
    df["store_pos"] = np.arange(len(df))
    df["is_sup"] = df["is_supplemental"].astype(bool)
    df = df.merge(folds[["sequence_id", "fold"]], on="sequence_id", how="inner")
    if df.empty:
        raise DataError("train: no sequence of the folds table is in the store (wrong store or folds file?)")
    if fold >= 0 and not (df["fold"] == fold).any():
        raise ConfigError(f"train: fold {fold} does not exist in the folds table (folds: {sorted(df.fold.unique())})")
    val_fold = fold if fold >= 0 else 0
    in_train = df["fold"] != fold if fold >= 0 else np.ones(len(df), bool)
    val = df[(df["fold"] == val_fold) & ~df["is_sup"]].copy()
    if round == 1:
        train = df[in_train & ~df["is_sup"] & (df["seq_len"] >= min_seq_len)].copy()
        train["score"] = np.float32(1.0)
        val["score"] = np.float32(1.0)
    else:
        if oof is None:
            raise ConfigError("train: round 2 needs the OOF table")
        scores = oof[["sequence_id", "score"]].drop_duplicates("sequence_id")
        keep_sup = df["phrase"].astype(str).str.len() <= max_supplemental_phrase_len
        train = df[in_train & (~df["is_sup"] | keep_sup) & (df["seq_len"] >= min_seq_len)]
        train = train.merge(scores, on="sequence_id", how="left")
        train["score"] = score_column(train, supplemental_score, sup_col="is_sup")
        val = val.merge(scores, on="sequence_id", how="left")
        val["score"] = np.clip(val["score"].fillna(1.0).to_numpy(np.float32), 0.0, 1.0)
    if train.empty:
        raise DataError(f"train: no training rows for round {round}, fold {fold}")
    if val.empty:
        raise DataError(f"train: no validation rows in fold {val_fold}")
    cols = ["store_pos", "sequence_id", "participant_id", "phrase", "seq_len", "is_sup", "score", "fold"]
    train = train[cols].reset_index(drop=True)
    val = val[cols].reset_index(drop=True)
    return train, train, val


def file_digest(*paths) -> str:
    """Short sha256 over the bytes of some files (the data version)."""
    h = hashlib.sha256()
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        if p.is_dir():
            for name in ("index.parquet", "meta.json"):
                if (p / name).is_file():
                    h.update((p / name).read_bytes())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------------------ setup
def resolve_mixed_precision(mode: str) -> bool:
    """``on`` / ``off``, or ``auto``: on when Keras sees a GPU."""
    if mode in ("on", "off"):
        return mode == "on"
    try:
        return bool(keras.distribution.list_devices("gpu"))
    except Exception:  # backends without device listing, or no GPU runtime
        return False


def _jit(mode: str):
    return {"auto": "auto", "on": True, "off": False}[mode]


def eval_epochs(epochs: int, eval_every: int) -> set[int]:
    """1-based epochs after which to evaluate: every ``eval_every`` and the last."""
    return {e for e in range(1, epochs + 1) if e % eval_every == 0} | {epochs}


def make_optimizer(schedule, round_params, train_params):
    accum = round_params.grad_accum if round_params.grad_accum > 1 else None
    return keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=round_params.weight_decay, beta_1=train_params.beta_1,
        beta_2=train_params.beta_2, epsilon=train_params.epsilon,
        global_clipnorm=train_params.clipnorm or None, gradient_accumulation_steps=accum)


def current_lr(model) -> float:
    return float(model.optimizer.learning_rate)


class EpochMonitor(keras.callbacks.Callback):
    """After every epoch: evaluate when due, append history, log to MLflow, then checkpoint (in that order, so a kill
    after the checkpoint loses nothing and a kill before it only repeats the epoch)."""

    def __init__(self, out_dir: Path, state: ckpt.TrainState, validator, evaluate_at: set[int], tracker=None,
                 datasets=(), verbose: int = 2):
        super().__init__()
        self.out_dir = out_dir
        self.state = state
        self.validator = validator
        self.evaluate_at = evaluate_at
        self.tracker = tracker
        self.datasets = datasets
        self.verbose = verbose
        self.last_eval: dict = {}
        self._t0 = time.time()

    def on_train_begin(self, logs=None):
        for ds in self.datasets:  # after Keras built its input signature: serve real batches only
            ds.disarm_signature_probe()

    def on_epoch_begin(self, epoch, logs=None):
        for ds in self.datasets:
            ds.set_epoch(epoch)
        self._t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        row = {"epoch": done, "lr": current_lr(self.model), "epoch_seconds": time.time() - self._t0}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        if done in self.evaluate_at:
            preds, metrics = self.validator.run()
            write_predictions(self.out_dir, preds)
            row.update(metrics)
            self.last_eval = metrics
            if self.state.best_score is None or metrics["score"] > self.state.best_score:
                self.state.best_score = float(metrics["score"])
            if self.verbose:
                print(f"epoch {done}: score {metrics['score']:.4f} cer {metrics['cer']:.4f} "
                      f"score_pp {metrics.get('score_pp', float('nan')):.4f} val_loss {metrics['val_loss']:.4f}"
                      + (f" score_ctc {metrics['score_ctc']:.4f}" if "score_ctc" in metrics else ""), flush=True)
        self.state.history.append(row)
        write_history(self.out_dir, self.state.history)
        if self.tracker is not None:
            self.tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=done)
        self.state.epoch = done
        ckpt.save_checkpoint(self.out_dir, self.model, self.state)


def write_predictions(out_dir: Path, preds: pd.DataFrame) -> Path:
    path = Path(out_dir) / runs.VAL_PREDICTIONS_FILE
    atomic.write_csv(path, preds)
    return path


def write_history(out_dir: Path, history: list[dict]) -> Path:
    path = Path(out_dir) / runs.HISTORY_FILE
    atomic.write_csv(path, pd.DataFrame(history))
    return path


def _config_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------------------ main
def train_model(round: int, fold: int, seed: int, data_dir, folds_csv, out_dir, oof_csv=None, *, train=None,
                augment=None, sampling=None, export=None, track: bool = True, run_tags: dict | None = None) -> TrainResult:
    """Train one model (round, fold, seed) and write its outputs under ``out_dir`` (module docstring).

    Args:
        round: 1 or 2.
        fold: validation fold; −1 = full fit (validated on fold 0).
        seed: random seed (weights, dropout, batches, augmentation); −1 draws one (recorded in the outputs).
        data_dir: the normalised :class:`~aslfs.data.store.SequenceStore` directory.
        folds_csv: ``sequence_id, participant_id, fold, is_supplemental``.
        out_dir: output directory (created).
        oof_csv: round 2: the OOF table of ``stages/oof.py``.
        train: :class:`aslfs.config.TrainParams` (defaults: the kaggle-1st recipe).
        augment: :class:`aslfs.config.AugmentParams`.
        sampling: :class:`aslfs.config.SamplingParams`.
        export: :class:`aslfs.config.ExportParams`: its dummy-phrase rule (``min_frames``, ``confidence_threshold``)
            gives the validation's ``score_pp``.
        track: log an MLflow run (``aslfs.tracking``); False logs nothing.
        run_tags: extra MLflow tags.

    Returns:
        :class:`TrainResult`.
    """
    from aslfs.config import AugmentParams, ExportParams, SamplingParams, TrainParams
    from aslfs.data.augment import build_augmentation
    from aslfs.data.store import SequenceStore
    from aslfs.models.config import config_from_params
    from aslfs.models.fingerspeller import FingerSpeller
    from aslfs.training.evaluation import Validator
    from aslfs.training.loader import SequenceBatches
    from aslfs.training.model import TrainingModel
    from aslfs.training.schedule import make_schedule

    train = train or TrainParams()
    augment = augment or AugmentParams()
    sampling = sampling or SamplingParams()
    export = export or ExportParams()
    if round not in (1, 2):
        raise ConfigError(f"train: round must be 1 or 2, got {round}")
    rp = train.round1 if round == 1 else train.round2
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    model_config = config_from_params({"preset": rp.preset, **rp.model_overrides.model_dump()}, f"train.round{round}")
    if sampling.max_len != model_config.max_len:
        # the exported graph resizes at the model's max_len: training at another length would change the time scale
        raise ConfigError(f"sampling.max_len {sampling.max_len} differs from the model's max_len "
                          f"{model_config.max_len} (train.round{round}); set model_overrides.max_len to match")
    if train.ctc_weight > 0 and not model_config.ctc_head:
        raise ConfigError("train.ctc_weight > 0 needs a model with ctc_head: true")
    if round == 2 and oof_csv is None:
        raise ConfigError("train: round 2 needs the OOF table (OOF_CSV)")

    # --- data
    store = SequenceStore(data_dir)
    folds = read_folds(folds_csv)
    oof = read_oof(oof_csv) if round == 2 else None
    train_table, partner_table, val_table = build_tables(
        store.index, folds, round, fold, rp.min_seq_len, oof, sampling.supplemental_score,
        sampling.max_supplemental_phrase_len)
    data_version = file_digest(data_dir, folds_csv, oof_csv)

    # --- identity of the run (resume only into the same one)
    resolved = {"round": round, "fold": fold, "train": train.model_dump(), "augment": augment.model_dump(),
                "sampling": sampling.model_dump(), "model": model_config.to_dict()}
    state = ckpt.load_state(out_dir)
    if seed < 0:
        seed = state.seed if state is not None and state.extra.get("seed_drawn") else secrets.randbelow(10**6)
        seed_drawn = True
    else:
        seed_drawn = False
    run_hash = _config_hash({**resolved, "seed": seed, "data_version": data_version})
    if state is not None and (state.extra.get("run_hash") != run_hash):
        print(f"train: discarding the checkpoint in {out_dir} (it belongs to another configuration)", flush=True)
        shutil.rmtree(out_dir / ckpt.CHECKPOINT_DIR, ignore_errors=True)
        state = None
    resumed_from = state.epoch if state is not None else None
    start_epoch = state.epoch if state is not None else 0
    if state is None:
        state = ckpt.TrainState(epoch=0, seed=seed, extra={"run_hash": run_hash, "seed_drawn": seed_drawn})

    # --- model
    mixed = resolve_mixed_precision(rp.mixed_precision)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16" if mixed else "float32")
    try:
        keras.utils.set_random_seed(seed)
        net = FingerSpeller(model_config)
        loss_config = LossConfig(label_smoothing=train.label_smoothing, backward_weight=train.backward_weight,
                                 confidence_weight=train.confidence_weight, ctc_weight=train.ctc_weight,
                                 ctc_blank_id=net.ctc_blank_id,
                                 backward_length="all" if sampling.backward_pad_fixed else "batch")
        model = TrainingModel(net, loss_config)
        buckets = train.buckets if train.bucketing else None
        use_mp = train.use_multiprocessing and train.workers > 0
        if use_mp and keras.backend.backend() == "jax":  # forking a process that runs JAX threads can deadlock
            print("train: JAX backend: loader workers are threads (use_multiprocessing ignored)", flush=True)
            use_mp = False
        batches = SequenceBatches(
            store, train_table, rp.batch_size, training=True, round=round,
            augmentation=build_augmentation(augment, round=round), partner_table=partner_table, seed=seed,
            epoch=start_epoch, buckets=buckets, bucket_window=train.bucket_window, max_len=sampling.max_len,
            resize_mode=sampling.resize_mode, decoder_mask_p=augment.decoder_mask_p,
            backward=model_config.backward_decoder, backward_pad_fixed=sampling.backward_pad_fixed,
            workers=train.workers,
            use_multiprocessing=use_mp, max_queue_size=train.max_queue_size)
        val_batches = SequenceBatches(
            store, val_table, train.eval_batch_size, training=False, round=round, buckets=buckets,
            max_len=sampling.max_len, resize_mode=sampling.resize_mode, backward=model_config.backward_decoder,
            backward_pad_fixed=sampling.backward_pad_fixed, workers=0)
        schedule = make_schedule(rp.peak_lr, rp.epochs, rp.warmup_epochs, batches.examples_per_epoch,
                                 rp.batch_size)
        model.compile(optimizer=make_optimizer(schedule, rp, train), jit_compile=_jit(train.jit_compile),
                      steps_per_execution=train.steps_per_execution)
        model.optimizer.build(model.trainable_variables)
        if resumed_from is not None:
            ckpt.restore_weights(out_dir, model)
            keras.utils.set_random_seed(seed + 7919 * resumed_from)  # fresh dropout stream for the resumed part
    finally:
        keras.config.set_dtype_policy(previous_policy)

    validator = Validator(net, val_batches, val_table, loss_config, round, export.min_frames,
                          export.confidence_threshold, train.empty_without_end)
    facts = {"round": round, "fold": fold, "seed": seed, "epochs": rp.epochs, "data_version": data_version,
             "train_rows": len(train_table), "examples_per_epoch": batches.examples_per_epoch,
             "val_rows": len(val_table), "mixed_precision": mixed, "backend": keras.backend.backend(),
             "steps_per_epoch": len(batches), "parameters": int(net.count_params())}

    # --- MLflow
    tracker_cm = None
    tracker = None
    if track:
        from aslfs import tracking

        params = {**resolved, "seed": seed, "data_version": data_version, "git_commit": tracking.git_commit(),
                  "train_rows": len(train_table), "val_rows": len(val_table),
                  "examples_per_epoch": batches.examples_per_epoch, "mixed_precision": mixed,
                  "backend": keras.backend.backend()}
        tags = {"aslfs.round": round, "aslfs.fold": fold, "aslfs.seed": seed, "aslfs.data_version": data_version,
                "aslfs.out_dir": str(out_dir.resolve()), **(run_tags or {})}
        name = f"train-round{round}-fold{fold}-seed{seed}"
        tracker_cm = tracking.start_run(name, "train", params=params, tags=tags, resume_run_id=state.mlflow_run_id)
        try:
            tracker = tracker_cm.__enter__()
        except Exception as err:
            if state.mlflow_run_id is None:
                raise
            print(f"train: cannot resume MLflow run {state.mlflow_run_id} ({str(err).splitlines()[0]}); "
                  "starting a new one", flush=True)
            tracker_cm = tracking.start_run(name, "train", params=params, tags=tags)
            tracker = tracker_cm.__enter__()
        if state.mlflow_run_id != tracker.run_id:  # a new run: close attempts killed before their first checkpoint
            tracking.close_stale_runs("aslfs.out_dir", tags["aslfs.out_dir"], tracker.run_id)
        state.mlflow_run_id = tracker.run_id
        if resumed_from is not None:
            state.resumes += 1
            tracker.set_tags({"aslfs.resumes": state.resumes, "aslfs.resumed_from_epoch": resumed_from})
    try:
        result = _fit(model, net, batches, val_batches, validator, state, out_dir, rp, train, start_epoch, tracker,
                      facts)
    except BaseException as err:
        if tracker_cm is not None:
            tracker_cm.__exit__(type(err), err, err.__traceback__)
        raise
    if tracker_cm is not None:
        tracker_cm.__exit__(None, None, None)
    result.resumed_from_epoch = resumed_from
    return result


def _fit(model, net, batches, val_batches, validator, state, out_dir, rp, train, start_epoch, tracker, facts):
    evaluate_at = eval_epochs(rp.epochs, rp.eval_every)
    monitor = EpochMonitor(out_dir, state, validator, evaluate_at, tracker, datasets=(batches,),
                           verbose=train.verbose)
    if start_epoch < rp.epochs:
        if keras.backend.backend() == "tensorflow":
            batches.arm_signature_probe()
        model.fit(batches, epochs=rp.epochs, initial_epoch=start_epoch, callbacks=[monitor], verbose=train.verbose,
                  shuffle=False)
    last = next((h for h in reversed(state.history) if "score" in h), None)
    if last is None or not (out_dir / runs.VAL_PREDICTIONS_FILE).is_file():
        preds, metrics = validator.run()
        write_predictions(out_dir, preds)
        last = {"epoch": state.epoch, **metrics}
    # final outputs
    with atomic.atomic_path(out_dir / runs.MODEL_FILE) as tmp:
        net.save(tmp)
    metrics = {**facts, "epochs_done": state.epoch, "best_score": state.best_score,
               "mlflow_run_id": state.mlflow_run_id,
               **{k: v for k, v in last.items() if k not in facts}}
    atomic.write_json(out_dir / runs.METRICS_FILE, metrics, default=float)
    write_history(out_dir, state.history)
    if tracker is not None:
        tracker.log_metrics({k: v for k, v in last.items() if k in ("score", "cer", "score_dl", "score_pp", "score_ctc")
                             and v is not None}, step=state.epoch)
        for name in (runs.METRICS_FILE, runs.VAL_PREDICTIONS_FILE, runs.HISTORY_FILE):
            tracker.log_artifact(out_dir / name)
        tracker.log_artifact(ckpt.model_path(out_dir), artifact_path=runs.CHECKPOINT_DIR)
    return TrainResult(out_dir=out_dir, metrics=metrics, epochs_done=state.epoch, seed=state.seed,
                       mlflow_run_id=state.mlflow_run_id, history=list(state.history))
