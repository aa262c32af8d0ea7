"""Training one model: ``train_model(round, fold, seed, ...)`` (docs/reference.md §5).

One call trains one (round, fold, seed): fold ``k`` ≥ 0 trains on the other folds and validates on fold ``k``; fold
−1 is a full fit that validates on fold 0 (which it also trains on), as the reference.

**Data**: the loader tables of :mod:`aslfs.training.tables` (training rows, which are also the CutMix partners, and
validation rows). In round 2 each epoch holds every non-supplemental row plus one random row per supplemental phrase.

**Optimisation.** ``keras.optimizers.AdamW`` (decoupled weight decay on every parameter, β 0.9/0.999, ε 1e-8),
global-norm clipping of the accumulated gradient, ``gradient_accumulation_steps = grad_accum`` (the optimizer
averages the micro-batch gradients and steps every ``grad_accum`` micro-batches), and the warm-up + cosine schedule
of :mod:`aslfs.training.schedule`, evaluated per micro-batch. Keras' ε is added to √v̂ after bias correction of m
only ("epsilon hat"); PyTorch adds it to √v̂ after both corrections — the same up to a factor √(1 − β₂ᵗ) on ε, which
only matters in the first few hundred steps and not at all at ε = 1e-8. Mixed precision (``mixed_float16``) wraps the
optimizer in Keras' dynamic ``LossScaleOptimizer``: like PyTorch's ``GradScaler`` it skips a micro-step whose
gradients are not finite (here that micro-step is also not counted by the schedule).

**Devices.** ``train.distribution`` / ``train.devices`` train data-parallel on one host
(:mod:`aslfs.training.distribution`): ``batch_size`` stays the global micro-batch, split over the devices, so the
schedule, accumulation, clipping and (synchronised) BatchNorm statistics are those of a single-device run. On JAX
one training can span several processes (hosts): process 0 writes the outputs below and logs the MLflow run; the
others write nothing (:mod:`aslfs.training.distribution`).

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

**Fine-tuning.** ``train.roundN.init_weights`` (a ``.keras`` file, e.g. an imported reference checkpoint, or a run
folder) replaces the random initialisation of a fresh run (:func:`aslfs.training.checkpoint.load_initial_weights`);
a resumed run continues from its own checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import keras

from aslfs import atomic, runs
from aslfs.errors import ConfigError
from aslfs.training import checkpoint as ckpt
from aslfs.training import distribution
from aslfs.training.callbacks import EpochMonitor, FirstStepNotices, eval_epochs, write_history, write_predictions
from aslfs.training.losses import LossConfig
from aslfs.training.optim import jit_mode, make_optimizer, resolve_mixed_precision
from aslfs.training.tables import build_tables, file_digest, filter_hand_frames, read_folds, read_oof


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
    from aslfs.data.store import SequenceStore
    from aslfs.training.evaluation import Validator

    train, augment = train or TrainParams(), augment or AugmentParams()
    sampling, export = sampling or SamplingParams(), export or ExportParams()
    rp, model_config = _check_settings(round, train, sampling, oof_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    store = SequenceStore(data_dir)
    train_table, val_table = build_tables(
        store.index, read_folds(folds_csv), round, fold, rp.min_seq_len, read_oof(oof_csv) if round == 2 else None,
        sampling.supplemental_score, sampling.max_supplemental_phrase_len)
    train_table = _hand_filter(train_table, store, train.min_hand_frames_per_char)
    data_version = file_digest(data_dir, folds_csv, oof_csv)
    resolved = {"round": round, "fold": fold, "train": train.model_dump(), "augment": augment.model_dump(),
                "sampling": sampling.model_dump(), "model": model_config.to_dict()}
    if rp.init_weights is not None:
        resolved["init_weights_digest"] = file_digest(runs.as_run(rp.init_weights).model_file)
    plan = _device_plan(train, rp, round)
    state, seed = _process_state(out_dir, resolved, seed, data_version, plan)
    resumed_from = state.epoch if state.epoch > 0 else None

    mixed = resolve_mixed_precision(rp.mixed_precision)
    scope = contextlib.ExitStack()
    scope.enter_context(distribution.scope(plan))
    net, model, loss_config, batches, val_batches = _build(
        model_config, store, train_table, val_table, round, rp, train, augment, sampling, seed, state.epoch, mixed,
        plan)
    if resumed_from is not None:
        ckpt.restore_weights(out_dir, model)
        keras.utils.set_random_seed(seed + 7919 * resumed_from)  # fresh dropout stream for the resumed part
    elif rp.init_weights is not None:
        count = ckpt.load_initial_weights(net, rp.init_weights, f"train.round{round}.init_weights")
        print(f"train: {count} weight tensors from {rp.init_weights} (fine-tuning)", flush=True)
    validator = Validator(net, val_batches, val_table, loss_config, round, export.min_frames,
                          export.confidence_threshold, train.empty_without_end)
    facts = {"round": round, "fold": fold, "seed": seed, "epochs": rp.epochs, "data_version": data_version,
             "train_rows": len(train_table), "examples_per_epoch": batches.examples_per_epoch,
             "val_rows": len(val_table), "mixed_precision": mixed, "backend": keras.backend.backend(),
             "steps_per_epoch": len(batches), "parameters": int(net.count_params()), "devices": plan.replicas}
    with scope, contextlib.ExitStack() as stack:
        tracker = None
        if track and plan.chief:  # one MLflow run per training, the chief's
            tags = {"aslfs.round": round, "aslfs.fold": fold, "aslfs.seed": seed, "aslfs.data_version": data_version,
                    "aslfs.out_dir": str(out_dir.resolve()), **(run_tags or {})}
            params = {**resolved, **{k: facts[k] for k in ("seed", "data_version", "train_rows", "val_rows",
                                                           "examples_per_epoch", "mixed_precision", "backend")}}
            tracker = _open_tracking(stack, f"train-round{round}-fold{fold}-seed{seed}", params, tags, state,
                                     resumed_from)
        result = _fit(model, net, batches, val_batches, validator, state, out_dir, rp, train, state.epoch,
                      tracker, facts, writes=plan.chief)
    result.resumed_from_epoch = resumed_from
    return result


def _process_state(out_dir: Path, resolved: dict, seed: int, data_version: str,
                   plan: distribution.Plan) -> tuple[ckpt.TrainState, int]:
    """:func:`_resume_state` in every process of the training: the chief recovers or discards the checkpoint, then
    the others read it."""
    if plan.processes > 1 and seed < 0:
        raise ConfigError(f"train: a {plan.processes}-process training needs an explicit seed (-1 would draw one "
                          "per process)")
    if plan.chief:
        state, seed = _resume_state(out_dir, resolved, seed, data_version)
    distribution.barrier("aslfs-resume")
    if not plan.chief:
        state, seed = _resume_state(out_dir, resolved, seed, data_version, chief=False)
    return state, seed


def _hand_filter(train_table, store, min_per_char: float):
    """``train.min_hand_frames_per_char`` applied to the training rows, with one line on what it dropped."""
    if min_per_char <= 0:
        return train_table
    kept = filter_hand_frames(train_table, store, min_per_char)
    if kept.empty:
        raise ConfigError(f"train.min_hand_frames_per_char {min_per_char:g} drops every training row")
    print(f"train: min_hand_frames_per_char {min_per_char:g} keeps {len(kept)} of {len(train_table)} training rows",
          flush=True)
    return kept


def _device_plan(train, rp, round: int) -> distribution.Plan:
    """The round's :class:`~aslfs.training.distribution.Plan`, announced when it is data-parallel."""
    plan = distribution.resolve(train.distribution, train.devices, rp.batch_size, f"train.round{round}")
    if plan.processes > 1:
        print(f"train: process {plan.process} of {plan.processes}"
              + (" (writes the run and its MLflow run)" if plan.chief else ""), flush=True)
    if plan.mode != "off":
        print(f"train: {plan.describe()}, {rp.batch_size // plan.replicas} samples per device and micro-batch",
              flush=True)
    return plan


def _check_settings(round: int, train, sampling, oof_csv):
    """The round's settings and model configuration, refused early where they cannot train."""
    from aslfs.models.config import config_from_params

    if round not in (1, 2):
        raise ConfigError(f"train: round must be 1 or 2, got {round}")
    rp = train.round1 if round == 1 else train.round2
    model_config = config_from_params({"preset": rp.preset, **rp.model_overrides.model_dump()}, f"train.round{round}")
    if sampling.max_len != model_config.max_len:
        # the exported graph resizes at the model's max_len: training at another length would change the time scale
        raise ConfigError(f"sampling.max_len {sampling.max_len} differs from the model's max_len "
                          f"{model_config.max_len} (train.round{round}); set model_overrides.max_len to match")
    if train.ctc_weight > 0 and not model_config.ctc_head:
        raise ConfigError("train.ctc_weight > 0 needs a model with ctc_head: true")
    if round == 2 and oof_csv is None:
        raise ConfigError("train: round 2 needs the OOF table (OOF_CSV)")
    return rp, model_config


def _resume_state(out_dir: Path, resolved: dict, seed: int, data_version: str,
                  chief: bool = True) -> tuple[ckpt.TrainState, int]:
    """The run's state: the checkpoint's when it belongs to the same run (same settings, data and seed), else a fresh
    one (a checkpoint of another configuration is discarded); a seed of −1 is drawn once and kept on resume.
    ``chief=False`` (the other processes of a multi-process training, after the chief's call) only reads."""
    state = ckpt.load_state(out_dir, read_only=not chief)
    seed_drawn = seed < 0
    if seed_drawn:
        seed = state.seed if state is not None and state.extra.get("seed_drawn") else secrets.randbelow(10**6)
    run_hash = _config_hash({**resolved, "seed": seed, "data_version": data_version})
    if state is not None and state.extra.get("run_hash") != run_hash:
        if chief:
            print(f"train: discarding the checkpoint in {out_dir} (it belongs to another configuration)", flush=True)
            shutil.rmtree(out_dir / ckpt.CHECKPOINT_DIR, ignore_errors=True)
        state = None
    if state is None:
        state = ckpt.TrainState(epoch=0, seed=seed, extra={"run_hash": run_hash, "seed_drawn": seed_drawn})
    return state, seed


def _build(model_config, store, train_table, val_table, round, rp, train, augment, sampling, seed, start_epoch,
           mixed, plan=None):
    """The network, its compiled training model, the loss settings and the two batch sources (under the mixed
    precision policy when ``mixed``; the global policy is restored afterwards)."""
    from aslfs.data.augment import build_augmentation
    from aslfs.models.fingerspeller import FingerSpeller
    from aslfs.training.loader import SequenceBatches
    from aslfs.training.model import TrainingModel
    from aslfs.training.schedule import make_schedule

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
        if use_mp and train.worker_transport == "keras" and keras.backend.backend() == "jax":
            # Keras forks its pool, and forking a process that runs JAX threads can deadlock (ours is spawned)
            print("train: JAX backend: loader workers are threads (use_multiprocessing ignored)", flush=True)
            use_mp = False
        batches = SequenceBatches(
            store, train_table, rp.batch_size, training=True, round=round,
            augmentation=build_augmentation(augment, round=round), partner_table=train_table, seed=seed,
            epoch=start_epoch, buckets=buckets, bucket_window=train.bucket_window, max_len=sampling.max_len,
            resize_mode=sampling.resize_mode, decoder_mask_p=augment.decoder_mask_p,
            backward=model_config.backward_decoder, backward_pad_fixed=sampling.backward_pad_fixed,
            workers=train.workers, use_multiprocessing=use_mp, max_queue_size=train.max_queue_size,
            batch_multiple=plan.replicas if plan is not None else 1,
            process_share=(plan.process, plan.processes) if plan is not None else (0, 1),
            worker_transport=train.worker_transport)
        val_batches = SequenceBatches(
            store, val_table, train.eval_batch_size, training=False, round=round, buckets=buckets,
            max_len=sampling.max_len, resize_mode=sampling.resize_mode, backward=model_config.backward_decoder,
            backward_pad_fixed=sampling.backward_pad_fixed, workers=0)
        schedule = make_schedule(rp.peak_lr, rp.epochs, rp.warmup_epochs, batches.examples_per_epoch, rp.batch_size)
        optimizer = distribution.prepare_optimizer(make_optimizer(schedule, rp, train), plan or distribution.Plan())
        model.compile(optimizer=optimizer, jit_compile=jit_mode(train.jit_compile),
                      steps_per_execution=train.steps_per_execution)
        model.optimizer.build(model.trainable_variables)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return net, model, loss_config, batches, val_batches


def _open_tracking(stack: contextlib.ExitStack, name: str, params: dict, tags: dict, state: ckpt.TrainState,
                   resumed_from: int | None):
    """Enter the run's MLflow run on ``stack``: the checkpoint's run when resuming (a new one when that run cannot be
    resumed), closing attempts that were killed before their first checkpoint."""
    from aslfs import tracking

    params = {**params, "git_commit": tracking.git_commit()}
    try:
        tracker = stack.enter_context(tracking.start_run(name, "train", params=params, tags=tags,
                                                         resume_run_id=state.mlflow_run_id))
    except Exception as err:
        if state.mlflow_run_id is None:
            raise
        print(f"train: cannot resume MLflow run {state.mlflow_run_id} ({str(err).splitlines()[0]}); "
              "starting a new one", flush=True)
        tracker = stack.enter_context(tracking.start_run(name, "train", params=params, tags=tags))
    if state.mlflow_run_id != tracker.run_id:  # a new run: close attempts killed before their first checkpoint
        tracking.close_stale_runs("aslfs.out_dir", tags["aslfs.out_dir"], tracker.run_id)
    state.mlflow_run_id = tracker.run_id
    if resumed_from is not None:
        state.resumes += 1
        tracker.set_tags({"aslfs.resumes": state.resumes, "aslfs.resumed_from_epoch": resumed_from})
    return tracker


def _fit(model, net, batches, val_batches, validator, state, out_dir, rp, train, start_epoch, tracker, facts,
         writes: bool = True):
    """Fit from ``start_epoch``, then write the final outputs. ``writes=False`` (the processes of a multi-process
    training other than the chief) writes no file but still saves the models in memory, in step with the chief."""
    evaluate_at = eval_epochs(rp.epochs, rp.eval_every)
    monitor = EpochMonitor(out_dir, state, validator, evaluate_at, tracker, datasets=(batches,),
                           verbose=train.verbose, writes=writes)
    if start_epoch < rp.epochs:
        if keras.backend.backend() == "tensorflow":
            batches.arm_signature_probe()
        notices = FirstStepNotices()
        try:
            model.fit(batches, epochs=rp.epochs, initial_epoch=start_epoch, callbacks=[notices, monitor],
                      verbose=train.verbose, shuffle=False)
        finally:
            notices.close()
            batches.close()
    last = next((h for h in reversed(state.history) if "score" in h), None)
    if last is None or (writes and not (out_dir / runs.VAL_PREDICTIONS_FILE).is_file()):
        preds, metrics = validator.run()
        if writes:
            write_predictions(out_dir, preds)
        last = {"epoch": state.epoch, **metrics}
    metrics = {**facts, "epochs_done": state.epoch, "best_score": state.best_score,
               "mlflow_run_id": state.mlflow_run_id,
               **{k: v for k, v in last.items() if k not in facts}}
    result = TrainResult(out_dir=out_dir, metrics=metrics, epochs_done=state.epoch, seed=state.seed,
                         mlflow_run_id=state.mlflow_run_id, history=list(state.history))
    if not writes:
        ckpt.save_in_memory(net)  # the chief's net.save below takes every process
        return result
    # final outputs
    with atomic.atomic_path(out_dir / runs.MODEL_FILE) as tmp:
        net.save(tmp)
    atomic.write_json(out_dir / runs.METRICS_FILE, metrics, default=float)
    write_history(out_dir, state.history)
    if tracker is not None:
        tracker.log_metrics({k: v for k, v in last.items() if k in ("score", "cer", "score_dl", "score_pp", "score_ctc")
                             and v is not None}, step=state.epoch)
        for name in (runs.METRICS_FILE, runs.VAL_PREDICTIONS_FILE, runs.HISTORY_FILE):
            tracker.log_artifact(out_dir / name)
        tracker.log_artifact(ckpt.model_path(out_dir), artifact_path=runs.CHECKPOINT_DIR)
    return result
