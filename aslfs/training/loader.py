"""Batches for ``model.fit``: a multiprocess :class:`keras.utils.PyDataset` with length bucketing.

**One batch** (:meth:`SequenceBatches.__getitem__`): load each row's globally normalised sequence from the store, run
the per-sample pipeline of :mod:`aslfs.data.sample` (training: flip → CutMix with a same-participant partner → the
round's augmentation list → resize/pad → targets with decoder-input masking; evaluation: resize/pad → targets), stack,
and in round 2 build the backward decoder's labels and inputs (:func:`aslfs.data.targets.collate_backward`).
The result is ``(x, y)``::

    x = {"landmarks": (B, L, 130, 3) float32, "padding_mask": (B, L) bool, "decoder_input_ids": (B, 33) int32,
         ["backward_decoder_input_ids": (B, 33) int32]}
    y = {"token_ids": (B, 33) int32, "score": (B,) float32, ["backward_token_ids": (B, 33) int32]}

The reference's backward labels are only as long as the batch's longest target (0-padded); they are padded on to
33 here so that only the batch size and the bucket length ever vary (XLA/JAX compile one graph per shape); the loss
scores only the reference's positions (:mod:`aslfs.training.losses`).

**Randomness** comes only from ``numpy.random.default_rng((seed, epoch, batch index))``: a batch is the same whichever
worker process makes it, whatever the number of workers, and a run resumed at epoch ``e`` sees the batches of an
uninterrupted run.

**Epoch plan** (computed in the main process at construction and in :meth:`set_epoch`): the epoch's rows (round 2:
every non-supplemental row plus one random row per supplemental phrase, :func:`aslfs.data.sample.round2_epoch_indices`),
shuffled, cut into ``⌈N / batch⌉`` batches. The number of batches per epoch is the same with bucketing on or off.

**Length bucketing** (beyond the reference; ``buckets`` not None): the shuffled rows are cut into windows of
``bucket_window`` batches, each window is sorted by raw length and cut into batches, and the batch order is shuffled;
so a batch holds sequences of similar length. After augmentation a batch is padded to the smallest bucket length ≥
its longest sample (≤ ``max_len``; longer samples are resized to ``max_len`` by the sample pipeline, as always).
Since the model masks padded frames everywhere (attention keys, convolutions, masked BatchNorm, the pooled heads),
a batch padded to its bucket gives the same outputs, loss and gradients as the same batch padded to ``max_len``; what
changes is which sequences share a batch (similar lengths) and that XLA/JAX compile one graph per bucket instead of
one per length. ``buckets=None`` pads every batch to ``max_len`` (the reference).

**TensorFlow input signature.** Keras' TensorFlow trainer builds a ``tf.data`` signature from the first two batches it
reads; a dimension equal in both becomes static and a later batch with another size would be rejected. Before
``fit`` the trainer calls :meth:`SequenceBatches.arm_signature_probe`: the next two reads return batch 0 and a
zero-filled copy of it whose variable dimensions (batch, and frames when bucketing) differ, so those
dimensions are declared dynamic. Those two reads are only used for the signature (Keras reads the batches again to
train). Other backends read no probe batches, so the trainer arms the probe only on TensorFlow.
"""

from __future__ import annotations

import os
import signal
from typing import Protocol, Sequence

import keras
import numpy as np
import pandas as pd

from aslfs.data.sample import MAX_LEN, PartnerSampler, make_eval_sample, make_train_sample, round2_epoch_indices
from aslfs.data.targets import collate_backward
from aslfs.vocab import MAX_TARGET_LEN

#: Columns a batch table must have (one row per sequence; ``store_pos`` is the row's position in the store).
TABLE_COLUMNS = ("store_pos", "sequence_id", "participant_id", "phrase", "seq_len", "is_sup", "score")


def _reset_worker_signals() -> None:
    """In a forked worker process: default SIGTERM/SIGINT handling. Workers inherit the parent's handlers (Prefect's
    and the stage's, which raise), and Keras stops its pool with SIGTERM at the end of every epoch."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the whole group; the parent handles it
    except ValueError:  # not the main thread of this process (thread workers): nothing to do
        pass


class Store(Protocol):
    """What the loader needs from :class:`aslfs.data.store.SequenceStore`."""

    index: pd.DataFrame

    def load(self, i: int) -> np.ndarray:  # (T, 130, 3) float32, globally normalised
        ...


def normalize_buckets(buckets: Sequence[int] | None, max_len: int) -> tuple[int, ...] | None:
    """Sorted unique bucket lengths ≤ ``max_len``, ending with ``max_len``; None stays None (no bucketing)."""
    if buckets is None:
        return None
    out = sorted({int(b) for b in buckets if 0 < int(b) < max_len})
    return tuple(out) + (int(max_len),)


def bucket_length(n: int, buckets: tuple[int, ...] | None, max_len: int) -> int:
    """The padded length for a batch whose longest sample has ``n`` frames."""
    if buckets is None:
        return max_len
    for b in buckets:
        if n <= b:
            return b
    return max_len


class SequenceBatches(keras.utils.PyDataset):
    """Training or evaluation batches of a table of sequences (see the module docstring).

    Args:
        store: the normalised sequence store (``load(store_pos)``).
        table: rows to serve, with :data:`TABLE_COLUMNS`. ``score`` is the clipped training score (round 2) or
            ignored (round 1: ``None`` scores, targets 1.0).
        batch_size: sequences per batch.
        training: augment, mask decoder inputs, shuffle; otherwise rows are served in table order (or sorted by
            length when bucketing, see :attr:`order`) without randomness.
        round: 1 or 2 (round 2: backward-decoder targets, score targets, supplemental sampling when ``training``).
        augmentation: :func:`aslfs.data.augment.build_augmentation` of the round (training only).
        partner_table: the table CutMix partners are drawn from (same participant, another sequence); defaults to
            ``table``. Round 2 passes the whole train-mode table, supplemental rows included.
        seed: base seed of every random draw.
        epoch: the epoch the first plan is for (a resumed run passes its next epoch).
        buckets: bucket lengths (None: pad to ``max_len``).
        bucket_window: batches per sorting window when bucketing.
        max_len, resize_mode: §2.2 (``aslfs.data.sample``).
        decoder_mask_p: §3.12 decoder-input masking probability (training only).
        backward: add the backward decoder's inputs and labels (defaults to ``round == 2``; the trainer passes
            whether the model has a backward decoder).
        backward_pad_fixed: §4.9 QUIRK switch (pad the backward labels with 59 to 33).
        supplemental_sampling: round-2 epochs of non-supplemental rows + one row per supplemental phrase (§1.9);
            defaults to ``training and round == 2``.
        workers, use_multiprocessing, max_queue_size: :class:`keras.utils.PyDataset` parallelism.
        worker_transport: with worker processes, ``keras`` (Keras' pool: batches pickled through pipes) or
            ``shared_memory`` (this dataset's own pool of spawned processes, batches handed over in shared memory:
            :mod:`aslfs.training.prefetch`; call :meth:`close` when done).
        batch_multiple: training under data parallelism: every batch is a multiple of this (the device count); a
            partial batch is trimmed (at most ``batch_multiple − 1`` rows, a different random set each epoch).
        process_share: ``(process, processes)`` of a multi-process training: every process makes the whole global
            batch (same rows, same random draws, same padded length) and serves its ``1/processes`` slice of the
            rows, in process order, which JAX assembles into the global batch. The slices hold exactly the samples
            of a one-process batch; the price is that every process makes every sample (README "One model on several hosts").
    """

    def __init__(self, store: Store, table: pd.DataFrame, batch_size: int, *, training: bool, round: int = 1,
                 augmentation=None, partner_table: pd.DataFrame | None = None, seed: int = 0, epoch: int = 0,
                 buckets: Sequence[int] | None = None, bucket_window: int = 32, max_len: int = MAX_LEN,
                 resize_mode: str = "linear", decoder_mask_p: float = 0.2, backward: bool | None = None,
                 backward_pad_fixed: bool = False, supplemental_sampling: bool | None = None, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10, batch_multiple: int = 1, process_share: tuple[int, int] = (0, 1),
                 worker_transport: str = "keras"):
        shared = worker_transport == "shared_memory" and use_multiprocessing and workers > 0
        if worker_transport not in ("keras", "shared_memory"):
            raise ValueError(f"SequenceBatches: worker_transport must be keras or shared_memory, got "
                             f"{worker_transport!r}")
        # shared memory: Keras reads the batches in the main thread, from this dataset's own worker pool
        super().__init__(workers=0 if shared else workers, use_multiprocessing=use_multiprocessing and not shared,
                         max_queue_size=max_queue_size)
        self._prefetcher = None
        if shared:
            from aslfs.training.prefetch import SharedMemoryPrefetcher

            self._prefetcher = SharedMemoryPrefetcher(self, workers, max_queue_size)
        missing = [c for c in TABLE_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"SequenceBatches: table lacks columns {missing}")
        if len(table) == 0:
            raise ValueError("SequenceBatches: empty table")
        if training and augmentation is None:
            raise ValueError("SequenceBatches: training needs an augmentation")
        self.store = store
        self.table = table.reset_index(drop=True)
        self.batch_size = int(batch_size)
        self.training = bool(training)
        self.round = int(round)
        self.augmentation = augmentation
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.max_len = int(max_len)
        self.buckets = normalize_buckets(buckets, self.max_len)
        self.bucket_window = max(1, int(bucket_window))
        self.resize_mode = resize_mode
        self.decoder_mask_p = float(decoder_mask_p) if training else 0.0
        self.backward = self.round == 2 if backward is None else bool(backward)
        self.backward_pad_fixed = bool(backward_pad_fixed)
        self.supplemental_sampling = (training and self.round == 2) if supplemental_sampling is None \
            else bool(supplemental_sampling)
        # plain numpy columns (cheap to pickle into workers, fast to index)
        self._pos = self.table["store_pos"].to_numpy(np.int64)
        self._phrase = self.table["phrase"].astype(str).to_numpy()
        self._seq_len = self.table["seq_len"].to_numpy(np.int64)
        self._score = self.table["score"].to_numpy(np.float32)
        self._use_score = self.round == 2
        if training:
            ptable = (self.table if partner_table is None else partner_table).reset_index(drop=True)
            self._partner_pos = ptable["store_pos"].to_numpy(np.int64)
            self._partner_phrase = ptable["phrase"].astype(str).to_numpy()
            self._partner_score = ptable["score"].to_numpy(np.float32)
            # the sampler works on partner-table rows; map each served row to its partner-table row
            self._partners = PartnerSampler(ptable)
            key = dict(zip(ptable["sequence_id"].to_numpy().tolist(), range(len(ptable))))
            self._row_in_partner = np.array([key.get(s, -1) for s in self.table["sequence_id"].tolist()], np.int64)
        self.batch_multiple = max(1, int(batch_multiple))
        self.process_share = (int(process_share[0]), int(process_share[1]))
        if self.process_share[1] > 1 and (not training or self.batch_multiple % self.process_share[1]):
            raise ValueError("SequenceBatches: a process share needs training batches that are a multiple of the "
                             "number of processes")
        self._probe_left = 0
        self._probe_shapes = None
        self._owner_pid = os.getpid()
        self._worker_ready = False
        self._epoch_len = len(self._epoch_rows(np.random.default_rng(0)))
        self._plan = self._make_plan(self.epoch)

    # ------------------------------------------------------------------------------------------------ plan
    def _epoch_rows(self, rng: np.random.Generator) -> np.ndarray:
        if self.supplemental_sampling:
            return round2_epoch_indices(self.table, rng, sup_col="is_sup")
        return np.arange(len(self.table))

    @property
    def examples_per_epoch(self) -> int:
        """N: rows per epoch (round 2 with supplemental sampling: N_ns + unique supplemental phrases)."""
        return self._epoch_len

    def _make_plan(self, epoch: int) -> list[np.ndarray]:
        plan = self._make_full_plan(epoch)
        if self.batch_multiple == 1:
            return plan
        k = self.batch_multiple  # data parallel: partial batches trimmed to a multiple of the device count
        plan = [rows[: len(rows) - len(rows) % k] for rows in plan]
        return [rows for rows in plan if len(rows)]

    def _make_full_plan(self, epoch: int) -> list[np.ndarray]:
        n, bs = self._epoch_len, self.batch_size
        if not self.training:
            rows = np.arange(n)
            if self.buckets is not None:
                rows = np.argsort(self._seq_len, kind="stable")
            return [rows[i: i + bs] for i in range(0, n, bs)]
        rng = np.random.default_rng((self.seed, epoch, 0x5EED))
        rows = rng.permutation(self._epoch_rows(rng))
        if len(rows) != n:
            raise RuntimeError("SequenceBatches: the epoch length changed between epochs")
        if self.buckets is None or len(rows) <= bs:
            return [rows[i: i + bs] for i in range(0, n, bs)]
        window = bs * self.bucket_window
        batches = []
        for w in range(0, n, window):
            chunk = rows[w: w + window]
            chunk = chunk[np.argsort(self._seq_len[chunk], kind="stable")]
            batches.extend(chunk[i: i + bs] for i in range(0, len(chunk), bs))
        order = rng.permutation(len(batches))
        return [batches[i] for i in order]

    def rows(self, idx: int) -> np.ndarray:
        """Table rows of batch ``idx`` of the current plan, in batch order."""
        return self._plan[idx]

    @property
    def order(self) -> np.ndarray:
        """The table rows in serving order (concatenated plan); evaluation uses it to map outputs back to rows."""
        return np.concatenate(self._plan)

    def __len__(self) -> int:
        return len(self._plan)

    def set_epoch(self, epoch: int) -> None:
        """Serve the plan of ``epoch`` (0-based). The trainer calls it from ``Callback.on_epoch_begin``, which Keras
        runs before it reads the epoch's first batch (and before it starts the worker processes of the epoch).
        ``on_epoch_end`` is not used: Keras also calls it once before the first epoch, so counting calls would be
        off by one."""
        epoch = int(epoch)
        if epoch != self.epoch:
            self.epoch = epoch
            if self.training:
                self._plan = self._make_plan(self.epoch)

    # ------------------------------------------------------------------------------------------------ batches
    def _score_of(self, row: int) -> float | None:
        return float(self._score[row]) if self._use_score else None

    def _partner_fn(self, row: int):
        prow = int(self._row_in_partner[row])
        if prow < 0:
            return None

        def partner(rng: np.random.Generator):
            j = self._partners(prow, rng)
            if j is None:
                return None
            score = float(self._partner_score[j]) if self._use_score else None
            return self.store.load(int(self._partner_pos[j])), str(self._partner_phrase[j]), score

        return partner

    def samples(self, rows: np.ndarray, rng: np.random.Generator | None) -> list[dict]:
        out = []
        for row in rows:
            row = int(row)
            x = self.store.load(int(self._pos[row]))
            if self.training:
                out.append(make_train_sample(x, str(self._phrase[row]), self._score_of(row), int(self._seq_len[row]),
                                             rng, self.augmentation, self._partner_fn(row), max_len=self.max_len,
                                             resize_mode=self.resize_mode, decoder_mask_p=self.decoder_mask_p))
            else:
                out.append(make_eval_sample(x, str(self._phrase[row]), self._score_of(row), int(self._seq_len[row]),
                                            max_len=self.max_len, resize_mode=self.resize_mode))
        return out

    def collate(self, samples: list[dict], rng: np.random.Generator | None, single_batch: bool = False,
                alloc=None):
        """Stack ``samples`` into a batch. ``alloc(key, shape, dtype)``, if given, supplies the arrays the two
        frame-sized inputs (``landmarks``, ``padding_mask``) are stacked into (a loader worker's shared memory)."""
        frames = max(int(s["padding_mask"].sum()) for s in samples)
        length = self.max_len if single_batch else bucket_length(frames, self.buckets, self.max_len)

        def stack(key: str):
            parts = [s[key][:length] for s in samples]
            out = None if alloc is None else alloc(key, (len(parts), *parts[0].shape), parts[0].dtype)
            return np.stack(parts, out=out)

        x = {
            "landmarks": stack("landmarks"),
            "padding_mask": stack("padding_mask"),
            "decoder_input_ids": np.stack([s["decoder_input_ids"] for s in samples]).astype(np.int32),
        }
        labels = np.stack([s["labels"] for s in samples]).astype(np.int32)
        y = {"token_ids": labels, "score": np.array([s["score"] for s in samples], np.float32)}
        if self.backward:
            # static shape: padded on to 33 (not scored, see aslfs.training.losses)
            bwd, bwd_in = collate_backward(labels, rng, self.decoder_mask_p, pad_fixed=self.backward_pad_fixed,
                                           length=MAX_TARGET_LEN)
            x["backward_decoder_input_ids"] = bwd_in
            y["backward_token_ids"] = bwd
        return x, y

    def batch(self, idx: int, alloc=None):
        """Batch ``idx`` of the current epoch's plan (no signature probing); ``alloc``: see :meth:`collate` (used
        only when the whole batch is served)."""
        rows = self._plan[idx]
        rng = np.random.default_rng((self.seed, self.epoch, int(idx))) if self.training else None
        process, processes = self.process_share
        batch = self.collate(self.samples(rows, rng), rng, single_batch=len(self._plan) == 1,
                             alloc=alloc if processes == 1 else None)
        if processes == 1:
            return batch
        share = len(rows) // processes
        return keras.tree.map_structure(lambda a: a[process * share: (process + 1) * share], batch)

    def __getitem__(self, idx: int):
        if idx >= len(self._plan):
            raise IndexError(idx)
        if os.getpid() != self._owner_pid and not self._worker_ready:
            _reset_worker_signals()
            self._worker_ready = True
        if self._probe_left > 0:
            return self._probe(idx)
        if self._prefetcher is not None and os.getpid() == self._owner_pid:
            return self._prefetcher.get(self.epoch, idx, len(self._plan))
        return self.batch(idx)

    def close(self) -> None:
        """Stop this dataset's own worker processes (``worker_transport: shared_memory``); no-op otherwise."""
        if self._prefetcher is not None:
            self._prefetcher.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_prefetcher"] = None  # a worker makes batches, it runs no pool of its own
        return state

    # ------------------------------------------------------------------------------------------------ TF signature
    def arm_signature_probe(self) -> None:
        """Make the next two reads declare the variable dimensions dynamic (module docstring). No effect with a
        single batch per epoch (its shape never changes)."""
        self._probe_left = 2 if len(self._plan) > 1 else 0

    def disarm_signature_probe(self) -> None:
        self._probe_left = 0

    def _probe(self, idx: int):
        self._probe_left -= 1
        if self._probe_shapes is None:
            batch = self.batch(idx)
            self._probe_shapes = batch
            return batch
        x, y = self._probe_shapes
        self._probe_shapes = None
        variable_len = self.buckets is not None

        def vary(name: str, a: np.ndarray) -> np.ndarray:
            shape = list(a.shape)
            shape[0] += 1
            if variable_len and name in ("landmarks", "padding_mask"):
                shape[1] += 1
            return np.zeros(shape, a.dtype)

        return ({k: vary(k, v) for k, v in x.items()}, {k: vary(k, v) for k, v in y.items()})
