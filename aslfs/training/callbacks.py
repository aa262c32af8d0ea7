"""What happens after every training epoch: evaluation when due, the history and predictions files, MLflow metrics and
the resume checkpoint (:class:`EpochMonitor`)."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import pandas as pd

from aslfs import atomic, runs
from aslfs.training import checkpoint as ckpt


def eval_epochs(epochs: int, eval_every: int) -> set[int]:
    """1-based epochs after which to evaluate: every ``eval_every`` and the last."""
    return {e for e in range(1, epochs + 1) if e % eval_every == 0} | {epochs}


def current_lr(model) -> float:
    return float(model.optimizer.learning_rate)


class EpochMonitor(keras.callbacks.Callback):
    """After every epoch: evaluate when due, append history, log to MLflow, then checkpoint (in that order, so a kill
    after the checkpoint loses nothing and a kill before it only repeats the epoch)."""

    def __init__(self, out_dir: Path, state: ckpt.TrainState, validator, evaluate_at: set[int], tracker=None,
                 datasets=(), verbose: int = 2, writes: bool = True):
        super().__init__()
        self.writes = writes  # False: a process of a multi-process training other than the chief
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
            if self.writes:
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
        self.state.epoch = done
        if not self.writes:  # saving takes every process: the chief's checkpoint needs this one's part
            ckpt.save_in_memory(self.model)
            return
        write_history(self.out_dir, self.state.history)
        if self.tracker is not None:
            self.tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=done)
        ckpt.save_checkpoint(self.out_dir, self.model, self.state)


def write_predictions(out_dir: Path, preds: pd.DataFrame) -> Path:
    path = Path(out_dir) / runs.VAL_PREDICTIONS_FILE
    atomic.write_csv(path, preds)
    return path


def write_history(out_dir: Path, history: list[dict]) -> Path:
    path = Path(out_dir) / runs.HISTORY_FILE
    atomic.write_csv(path, pd.DataFrame(history))
    return path


class FirstStepNotices(keras.callbacks.Callback):
    """Keeps TensorFlow's known-harmless native notices of a training's first step off the console
    (:class:`aslfs.env.native_stderr_filtered` around batch 0; anything else written meanwhile comes out after it).
    :meth:`close` ends the filter if the step raised (the trainer calls it in ``finally``)."""

    def __init__(self):
        super().__init__()
        self._filter = None
        self._done = False

    def on_train_batch_begin(self, batch, logs=None):
        if not self._done and keras.backend.backend() == "tensorflow":
            from aslfs.env import native_stderr_filtered

            self._filter = native_stderr_filtered().__enter__()

    def on_train_batch_end(self, batch, logs=None):
        self.close()

    def close(self):
        self._done = True
        if self._filter is not None:
            self._filter.__exit__(None, None, None)
            self._filter = None

