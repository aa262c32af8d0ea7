"""Worker processes that hand training batches over in shared memory (``train.worker_transport: shared_memory``).

Keras' PyDataset pool sends every batch from its worker process back through a pipe, pickled: a round-2 batch of
64 × 384 frames is 38 MB, and on a 16-core GPU host the pool delivers about 700 samples/s however many workers it
has, while threads stop near 1,300 (the GIL); one worker alone makes about 1,100 (BENCHMARKS.md). Here the batches
travel through a ring of POSIX shared-memory blocks ("slots") that the main process and the workers keep mapped for
the whole training. A worker stacks the batch's frame-sized arrays straight into the slot its task names (no
intermediate batch, no second copy), copies the small ones after them, and sends back only the layout. The main
process lends the batch out as numpy views over the slot (no copy: about 0.3 ms a batch, so one training process
can take in far more batches than any accelerator consumes); the slot goes back to the ring when the last array over
it is gone (:class:`_Lease`: a backend that aliases host memory, as JAX on CPU does, holds the arrays as long as it
uses them, so a slot is never rewritten under it). A slot is made once, by the worker that first fills it, at the
size of a batch at ``max_len`` frames; making and freeing a block per batch instead cost a page fault per 4 KiB on
both sides, three times the copy itself, measured on the 2-core machine.

The pool is started once, at the first batch, and kept across epochs (Keras restarts its pool every epoch); its
processes are spawned and import Keras on its numpy backend (about 0.4 GB and a few seconds each). Each task
names its epoch: a worker serves the plan of that epoch, so the batches are exactly :meth:`SequenceBatches.batch`'s
whichever worker makes them. The next ``depth`` batches of the epoch are always in flight. :meth:`close` (the
trainer calls it when ``fit`` ends, and the interpreter at exit) stops the workers and frees every block's name (a
block a batch is still lent from stays mapped until that batch is gone). A worker that dies (killed, out of memory,
or SIGBUS on a full ``/dev/shm``) is one clear error, not a hang, and the pool first checks that ``/dev/shm`` has
room for its slots (containers often give it 64 MB).
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import time
import weakref
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import numpy as np

#: One array of a batch in a slot: (group, key, dtype, shape, offset). Groups: 0 = inputs x, 1 = targets y.
Layout = list[tuple[int, str, str, tuple[int, ...], int]]

#: Block names: ``aslfs-<main process id>-<pool>-<worker process id>-<counter>``, so that the blocks a killed
#: training left behind (a SIGKILL runs no clean-up) can be told apart and are freed by the next pool that starts
#: (:func:`sweep`), and a closing pool frees the blocks of tasks that never came back.
PREFIX = "aslfs-"
#: Where POSIX shared-memory blocks live (Linux).
SHM_ROOT = "/dev/shm"
#: How long the first batch may take (the workers' start: an import of Keras each, seconds).
STARTUP_TIMEOUT_S = 300
#: How often a wait for a batch checks that no worker process has died.
_POLL_S = 10.0

_DATASET = None  # the dataset a worker serves (set by its initializer)
_NAMES = PREFIX  # the prefix of the blocks a worker makes (set by its initializer: one per pool)
_INIT_ERROR: BaseException | None = None  # why a worker could not set up (raised by its first task)
_MAPPED: dict[int, shared_memory.SharedMemory] = {}  # in a worker: the slots it has mapped, by slot number
_COUNTER = iter(range(1 << 62))


def _worker_init(dataset, names: str) -> None:
    # an exception here would make the pool start the worker again, for ever: keep it for the first task instead
    global _DATASET, _INIT_ERROR, _NAMES
    try:
        from aslfs.training.loader import _reset_worker_signals

        _reset_worker_signals()
        _DATASET, _NAMES = dataset, names
    except BaseException as err:  # noqa: BLE001 (re-raised in the task)
        _INIT_ERROR = err


def sweep(root: str = SHM_ROOT) -> int:
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


def _new_block(size: int) -> shared_memory.SharedMemory:
    """In a worker: a new block for the main process to own (it frees it; the worker's registration with the
    resource tracker is withdrawn, or it would be reported as a leak at exit)."""
    name = f"{_NAMES}{os.getpid()}-{next(_COUNTER)}"
    block = shared_memory.SharedMemory(name=name, create=True, size=size)
    resource_tracker.unregister(block._name, "shared_memory")
    return block


def _round(nbytes: int) -> int:
    return (nbytes + 63) // 64 * 64


def batch_bytes(rows: int, max_len: int, frame_bytes: int) -> int:
    """Room for one batch of ``rows`` sequences at ``max_len`` frames of ``frame_bytes`` each (landmarks and mask),
    with 4 KiB a row for the token arrays: the size of a slot, made once."""
    return rows * (max_len * frame_bytes + 4096)


class _SlotWriter:
    """In a worker: writes one batch into its slot. The frame-sized inputs are stacked straight into the slot (the
    writer is the loader's ``alloc``), the small arrays copied after them (:meth:`place`). A slot with no block yet,
    or one too small, gets a new block of :func:`batch_bytes` at ``max_len`` frames."""

    def __init__(self, slot: int, name: str | None, max_len: int):
        block = _MAPPED.get(slot)
        if block is not None and block.name != name:  # the main process replaced the slot's block
            block.close()
            block = None
        if block is None and name is not None:
            block = shared_memory.SharedMemory(name=name)
        self.slot, self.block, self.max_len = slot, block, max_len
        self.offset = 0
        self.placed: dict[int, int] = {}  # id(array) → offset, for the arrays handed out by __call__
        self.made: set[str] = set()  # blocks made by this task

    def _room(self, nbytes: int, reserve: int = 0) -> None:
        """Make sure the slot's block can take ``nbytes`` more (and is at least ``reserve`` large); a new block
        otherwise, which is only ever made before anything is written (:meth:`place` sees to it)."""
        need = max(self.offset + nbytes, reserve)
        if self.block is not None and self.block.size >= need:
            return
        assert self.offset == 0, "a slot's block is replaced only before anything is written into it"
        if self.block is not None:
            self.block.close()
            if self.block.name in self.made:  # made in this task, never handed over: free it now
                Path(SHM_ROOT, self.block.name).unlink(missing_ok=True)  # (not tracked: no unlink())
        self.block = _new_block(max(need, 1))
        self.made.add(self.block.name)

    def __call__(self, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        reserve = 0
        if self.offset == 0 and len(shape) > 1:  # the first input: a (rows, frames, ...) array
            reserve = batch_bytes(shape[0], self.max_len, nbytes // max(1, shape[0] * shape[1]) + 1)
        self._room(_round(nbytes), reserve)
        out = np.ndarray(shape, dtype, buffer=self.block.buf, offset=self.offset)
        self.placed[id(out)] = self.offset
        self.offset += _round(nbytes)
        return out

    def place(self, x: dict, y: dict) -> Layout:
        """The batch's layout in the slot, the arrays not yet in it copied in."""
        groups = (x, y)
        rest = sum(_round(np.asarray(v).nbytes) for group in groups for v in group.values()
                   if id(v) not in self.placed)
        if self.block is None or self.offset + rest > self.block.size:
            # the stacked arrays outgrew their reservation (not with the loader's arrays): start the slot afresh,
            # with room for the batch at max_len frames
            for group in groups:
                for k, v in group.items():
                    if id(v) in self.placed:
                        group[k] = np.array(v)
            self.placed.clear()
            self.offset = 0
            first = np.asarray(next(iter(x.values())))
            rows, frames = first.shape[:2] if first.ndim > 1 else (1, 1)
            total = sum(_round(np.asarray(v).nbytes) for group in groups for v in group.values())
            self._room(total, batch_bytes(rows, self.max_len, first.nbytes // max(1, rows * frames) + 1))
        layout = []
        for g, group in enumerate(groups):
            for k, v in group.items():
                a = np.asarray(v)
                start = self.placed.get(id(v))
                if start is None:
                    start = self.offset
                    np.ndarray(a.shape, a.dtype, buffer=self.block.buf, offset=start)[...] = a
                    self.offset += _round(a.nbytes)
                layout.append((g, k, a.dtype.str, a.shape, start))
        _MAPPED[self.slot] = self.block
        return layout


def _make(epoch: int, idx: int, slot: int, name: str | None) -> tuple[int, str, Layout]:
    """In a worker: batch ``idx`` of ``epoch`` written into slot ``slot`` (block ``name``, or none yet). Returns the
    slot, the name of its block (a new one when it had none or was too small), and the layout."""
    if _INIT_ERROR is not None:
        raise RuntimeError(f"loader worker could not start: {_INIT_ERROR}")
    ds = _DATASET
    ds.set_epoch(epoch)
    writer = _SlotWriter(slot, name, ds.max_len)
    x, y = ds.batch(idx, alloc=writer)
    layout = writer.place(x, y)
    return slot, writer.block.name, layout


class _Lease:
    """One batch's bytes in a slot, lent to the training: every array of the batch is a view whose numpy base is
    this object, so the slot goes back to the ring only when the last of them is gone (a backend that aliases host
    memory, as JAX on CPU does, keeps the arrays alive while it uses them). It holds the slot's block, so the
    memory stays mapped as long as any array over it lives, even after the pool has closed."""

    def __init__(self, block: shared_memory.SharedMemory):
        self.block = block
        address = np.ndarray((1,), np.uint8, buffer=block.buf).ctypes.data
        self.__array_interface__ = {"data": (address, False), "shape": (block.size,), "typestr": "|u1", "version": 3}


def _lend(slots: "_Slots", slot: int, layout: Layout) -> tuple[dict, dict]:
    """In the main process: the batch in ``slot``, as numpy arrays over the slot's memory (no copy)."""
    lease = _Lease(slots.blocks[slot])
    slots.leased[slot] = weakref.ref(lease)
    weakref.finalize(lease, slots.give_back, slot)
    flat = np.asarray(lease)
    out: tuple[dict, dict] = ({}, {})
    for g, k, dtype, shape, start in layout:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        out[g][k] = flat[start: start + count * dtype.itemsize].view(dtype).reshape(shape)
    return out


class _Slots:
    """The main process's ring: slot number → its mapped block (None until a worker makes one). A slot is free, in
    flight (a worker writes it) or leased (the training holds its batch); the ring grows when the training holds
    more batches than expected."""

    def __init__(self, count: int):
        self.blocks: list[shared_memory.SharedMemory | None] = [None] * count
        self.free = list(range(count))
        self.leased: dict[int, weakref.ref] = {}
        self.closed = False

    def acquire(self) -> int:
        if not self.free:
            self.blocks.append(None)
            return len(self.blocks) - 1
        return self.free.pop()

    def give_back(self, slot: int) -> None:
        self.leased.pop(slot, None)
        if not self.closed:
            self.free.append(slot)

    def task_args(self, slot: int) -> tuple[int, str | None]:
        block = self.blocks[slot]
        return slot, None if block is None else block.name

    def adopt(self, slot: int, name: str) -> None:
        """The slot's block after a task (a worker may have replaced it with a larger one: the old is freed)."""
        block = self.blocks[slot]
        if block is None or block.name != name:
            if block is not None:
                _release(block)
            self.blocks[slot] = shared_memory.SharedMemory(name=name)

    def release_all(self) -> None:
        """Free every block's name; unmap those no batch is lent from (a lent one is unmapped with its lease)."""
        self.closed = True
        for i, block in enumerate(self.blocks):
            if block is not None:
                lease = self.leased.get(i)
                _release(block, unmap=lease is None or lease() is None)
                self.blocks[i] = None


def _release(block: shared_memory.SharedMemory, unmap: bool = True) -> None:
    if unmap:
        block.close()
    try:
        block.unlink()
    except FileNotFoundError:
        pass


def _frame_bytes(dataset) -> int:
    """Bytes of one padded frame of a batch (a store sequence's frame as float32, and its mask byte)."""
    first = dataset.store.load(int(dataset._pos[0]))
    return int(np.prod(first.shape[1:])) * 4 + 1


def check_room(dataset, slots: int, root: str = SHM_ROOT) -> None:
    """Raise a one-line error when ``root`` cannot hold ``slots`` batches of ``dataset`` at full length (a worker
    writing past a full /dev/shm is killed by SIGBUS; containers often give it 64 MB)."""
    rows = dataset.batch_size // dataset.process_share[1]
    need = slots * batch_bytes(rows, dataset.max_len, _frame_bytes(dataset))
    try:
        st = os.statvfs(root)
    except OSError:
        return  # no /dev/shm to measure (another platform): Python's shared memory manages on its own
    have = st.f_bavail * st.f_frsize
    if have < need:
        raise RuntimeError(
            f"{root} has {have / 2**20:.0f} MB free; the shared-memory loader needs about {need / 2**20:.0f} MB "
            f"({slots} batches of {rows} × {dataset.max_len} frames): give the container more (docker run "
            "--shm-size=2g, or --ipc=host), lower train.max_queue_size, or set train.worker_transport: keras")


class SharedMemoryPrefetcher:
    """``workers`` spawned processes making the batches of ``dataset`` (a :class:`SequenceBatches`) ahead of use.

    Args:
        dataset: the dataset; pickled into each worker as it is at the first :meth:`get`.
        workers: processes.
        depth: batches in flight (at least ``workers``); also the number of slots.
    """

    def __init__(self, dataset, workers: int, depth: int):
        self.dataset = dataset
        self.workers = max(1, int(workers))
        self.depth = max(self.workers, int(depth))
        self._pool = None
        self._pids: set[int] = set()
        self._slots: _Slots | None = None
        self._pending: dict[tuple[int, int], tuple[int, object]] = {}  # (epoch, batch) → (slot, async result)
        self._finalizer = None
        self._served = False
        #: batches served, and the seconds the training process spent taking them from their slots
        self.stats = {"batches": 0, "lend_s": 0.0}

    def _start(self) -> None:
        sweep()  # what a killed training left behind
        check_room(self.dataset, self.depth + 2)  # the ring grows by the batches the training holds
        resource_tracker.ensure_running()  # one tracker, shared by the workers
        # spawned, not forked (forking a process that runs JAX or TensorFlow threads can deadlock), on Keras' numpy
        # backend: a worker makes numpy batches and loads no TensorFlow or JAX runtime
        previous = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = "numpy"
        try:
            names = f"{PREFIX}{os.getpid()}-{id(self):x}-"
            self._pool = mp.get_context("spawn").Pool(self.workers, initializer=_worker_init,
                                                      initargs=(self.dataset, names))
        finally:
            if previous is None:
                os.environ.pop("KERAS_BACKEND", None)
            else:
                os.environ["KERAS_BACKEND"] = previous
        self._pids = {p.pid for p in self._pool._pool}
        self._slots = _Slots(self.depth)
        self._finalizer = weakref.finalize(self, _shutdown, self._pool, self._pending, self._slots, names)
        atexit.register(self._finalizer)

    def _submit(self, epoch: int, idx: int) -> None:
        slot = self._slots.acquire()
        task = self._pool.apply_async(_make, (epoch, idx, *self._slots.task_args(slot)))
        self._pending[(epoch, idx)] = slot, task

    def _wait(self, result):
        """A task's result; a clear error if the workers make no first batch or one of them dies."""
        waited = 0.0
        while True:
            try:
                return result.get(timeout=_POLL_S)
            except mp.TimeoutError:
                waited += _POLL_S
            if {p.pid for p in self._pool._pool} != self._pids:
                raise RuntimeError(
                    "a loader worker process died (killed, out of memory, or a full /dev/shm: SIGBUS) and its "
                    "batch is lost; see the system log, or set train.worker_transport: keras")
            if not self._served and waited >= STARTUP_TIMEOUT_S:
                raise RuntimeError(
                    f"the loader's {self.workers} worker processes made no batch in {STARTUP_TIMEOUT_S} s; a "
                    "training started from a script must run under `if __name__ == \"__main__\":` (they are "
                    "spawned processes and import the script), or set train.worker_transport: keras")

    def get(self, epoch: int, idx: int, count: int) -> tuple[dict, dict]:
        """Batch ``idx`` of ``epoch`` (an epoch of ``count`` batches), with the following batches put in flight."""
        if self._pool is None:
            self._start()
        for key in [k for k in self._pending if k[0] != epoch or k[1] < idx]:  # leftovers of a restarted epoch
            _settle(self._pending.pop(key), self._slots)
        for ahead in range(idx, min(idx + self.depth, count)):
            if (epoch, ahead) not in self._pending:
                self._submit(epoch, ahead)
        slot, result = self._pending.pop((epoch, idx))
        try:
            _, name, layout = self._wait(result)
        except BaseException:
            self._slots.free.append(slot)
            raise
        self._served = True
        start = time.perf_counter()
        self._slots.adopt(slot, name)
        batch = _lend(self._slots, slot, layout)
        self.stats["batches"] += 1
        self.stats["lend_s"] += time.perf_counter() - start
        return batch

    def close(self) -> None:
        """Stop the workers and free every block."""
        if self._finalizer is not None:
            self._finalizer()
            atexit.unregister(self._finalizer)
        self._pool, self._finalizer, self._slots = None, None, None
        self._pending = {}


def _settle(task: tuple[int, object], slots: _Slots) -> None:
    """A task whose batch is no longer wanted: wait for it, keep its slot's block, free the slot."""
    slot, result = task
    try:
        slots.adopt(slot, result.get(timeout=600)[1])
    except Exception:  # noqa: BLE001 (the batch failed or its worker died: the slot's block is unchanged)
        pass
    slots.free.append(slot)


def _shutdown(pool, pending: dict, slots: _Slots, names: str) -> None:
    pool.terminate()
    pool.join()
    pending.clear()
    slots.release_all()
    for path in Path(SHM_ROOT).glob(f"{names}*"):  # made by a worker whose task never came back
        path.unlink(missing_ok=True)
