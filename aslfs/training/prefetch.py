"""Worker processes that hand training batches over in shared memory (``train.worker_transport: shared_memory``).

Keras' PyDataset pool sends every batch from its worker process back through a pipe, pickled: a round-2 batch of
64 × 384 frames is 38 MB, and on a 16-core GPU host the pool delivers about 700 samples/s however many workers it
has, while threads stop near 1,300 (the GIL); one worker alone makes about 1,100 (BENCHMARKS.md). Here each worker
writes its batch into one POSIX shared-memory block and sends back only the block's name and the arrays' layout; the
main process copies the arrays out and frees the block. So the throughput grows with the workers until the cores or
the copies run out.

The pool is started once, at the first batch, and kept across epochs (Keras restarts its pool every epoch); its
processes are spawned and import Keras on its numpy backend (about 0.4 GB and a few seconds each). Each task
names its epoch: a worker serves the plan of that epoch, so the batches are exactly :meth:`SequenceBatches.batch`'s
whichever worker makes them. The next ``depth`` batches of the epoch are always in flight. :meth:`close` (the
trainer calls it when ``fit`` ends, and the interpreter at exit) stops the workers and frees every block.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import weakref
from pathlib import Path
from multiprocessing import resource_tracker, shared_memory

import numpy as np

_DATASET = None  # the dataset a worker serves (set by its initializer)

#: One array of a batch in a block: (group, key, dtype, shape, offset). Groups: 0 = inputs x, 1 = targets y.
Layout = list[tuple[int, str, str, tuple[int, ...], int]]


_INIT_ERROR: BaseException | None = None  # why a worker could not set up (raised by its first task)


def _worker_init(dataset) -> None:
    # an exception here would make the pool start the worker again, for ever: keep it for the first task instead
    global _DATASET, _INIT_ERROR
    try:
        from aslfs.training.loader import _reset_worker_signals

        _reset_worker_signals()
        _DATASET = dataset
    except BaseException as err:  # noqa: BLE001 (re-raised in the task)
        _INIT_ERROR = err


#: Block names: ``aslfs-<main process id>-<worker process id>-<counter>``, so that the blocks a killed training left
#: behind (a SIGKILL runs no clean-up) can be told apart and are freed by the next pool that starts (:func:`sweep`).
PREFIX = "aslfs-"
#: How long the first batch may take (the workers' start: an import of Keras each, seconds).
STARTUP_TIMEOUT_S = 300
_COUNTER = iter(range(1 << 62))


def sweep(root: str = "/dev/shm") -> int:
    """Free the blocks of trainings whose main process is gone; returns how many."""
    freed = 0
    for path in Path(root).glob(f"{PREFIX}*"):
        try:
            owner = int(path.name[len(PREFIX):].split("-")[0])
            os.kill(owner, 0)
            continue  # alive (or not ours to judge)
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError):
            continue
        try:
            path.unlink()
            freed += 1
        except OSError:
            pass
    return freed


def _make(epoch: int, idx: int) -> tuple[str, Layout, int]:
    """In a worker: batch ``idx`` of ``epoch`` written into a new shared-memory block; its name and layout."""
    if _INIT_ERROR is not None:
        raise RuntimeError(f"loader worker could not start: {_INIT_ERROR}")
    ds = _DATASET
    ds.set_epoch(epoch)
    x, y = ds.batch(idx)
    arrays = [(g, k, np.ascontiguousarray(v)) for g, group in enumerate((x, y)) for k, v in group.items()]
    layout, offset = [], 0
    for g, k, a in arrays:
        layout.append((g, k, a.dtype.str, a.shape, offset))
        offset += (a.nbytes + 63) // 64 * 64
    name = f"{PREFIX}{os.getppid()}-{os.getpid()}-{next(_COUNTER)}"
    block = shared_memory.SharedMemory(name=name, create=True, size=max(offset, 1))
    # the main process owns the block from here: it attaches (which registers it with the resource tracker) and
    # unlinks (which unregisters it); the worker's own registration would be reported as a leak at exit
    resource_tracker.unregister(block._name, "shared_memory")
    try:
        for (g, k, a), (*_, start) in zip(arrays, layout):
            np.ndarray(a.shape, a.dtype, buffer=block.buf, offset=start)[...] = a
        return block.name, layout, offset
    finally:
        block.close()


def _take(name: str, layout: Layout) -> tuple[dict, dict]:
    """In the main process: the batch in block ``name`` copied out, and the block freed."""
    block = shared_memory.SharedMemory(name=name)
    try:
        out: tuple[dict, dict] = ({}, {})
        for g, k, dtype, shape, start in layout:
            out[g][k] = np.ndarray(shape, np.dtype(dtype), buffer=block.buf, offset=start).copy()
        return out
    finally:
        block.close()
        block.unlink()


def _free(name: str) -> None:
    try:
        block = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return
    block.close()
    block.unlink()


class SharedMemoryPrefetcher:
    """``workers`` forked processes making the batches of ``dataset`` (a :class:`SequenceBatches`) ahead of use.

    Args:
        dataset: the dataset; pickled into each worker as it is at the first :meth:`get`.
        workers: processes.
        depth: batches in flight (at least ``workers``).
    """

    def __init__(self, dataset, workers: int, depth: int):
        self.dataset = dataset
        self.workers = max(1, int(workers))
        self.depth = max(self.workers, int(depth))
        self._pool = None
        self._pending: dict[tuple[int, int], object] = {}
        self._finalizer = None
        self._served = False

    def _start(self) -> None:
        sweep()  # what a killed training left behind
        resource_tracker.ensure_running()  # one tracker, shared by the workers
        # spawned, not forked (forking a process that runs JAX or TensorFlow threads can deadlock), on Keras' numpy
        # backend: a worker makes numpy batches and loads no TensorFlow or JAX runtime
        previous = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = "numpy"
        try:
            self._pool = mp.get_context("spawn").Pool(self.workers, initializer=_worker_init,
                                                      initargs=(self.dataset,))
        finally:
            if previous is None:
                os.environ.pop("KERAS_BACKEND", None)
            else:
                os.environ["KERAS_BACKEND"] = previous
        pool, pending = self._pool, self._pending
        self._finalizer = weakref.finalize(self, _shutdown, pool, pending)
        atexit.register(self._finalizer)

    def get(self, epoch: int, idx: int, count: int) -> tuple[dict, dict]:
        """Batch ``idx`` of ``epoch`` (an epoch of ``count`` batches), with the following batches put in flight."""
        if self._pool is None:
            self._start()
        for key in [k for k in self._pending if k[0] != epoch]:  # an earlier epoch's leftovers
            _discard(self._pending.pop(key))
        for ahead in range(idx, min(idx + self.depth, count)):
            if (epoch, ahead) not in self._pending:
                self._pending[(epoch, ahead)] = self._pool.apply_async(_make, (epoch, ahead))
        result = self._pending.pop((epoch, idx))
        try:
            name, layout, _ = result.get(timeout=STARTUP_TIMEOUT_S if not self._served else None)
        except mp.TimeoutError:
            raise RuntimeError(
                f"the loader's {self.workers} worker processes made no batch in {STARTUP_TIMEOUT_S} s; a training "
                "started from a script must run under `if __name__ == \"__main__\":` (they are spawned processes "
                "and import the script), or set train.worker_transport: keras") from None
        self._served = True
        return _take(name, layout)

    def close(self) -> None:
        """Stop the workers and free every block still in flight."""
        if self._finalizer is not None:
            self._finalizer()
            atexit.unregister(self._finalizer)
        self._pool, self._finalizer = None, None
        self._pending = {}


def _discard(result) -> None:
    try:
        name = result.get(timeout=600)[0]
    except Exception:  # the batch failed: nothing was allocated
        return
    _free(name)


def _shutdown(pool, pending: dict) -> None:
    for result in pending.values():
        _discard(result)
    pending.clear()
    pool.terminate()
    pool.join()
