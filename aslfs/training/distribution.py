"""Data-parallel training on one host or several: the backend adapter (the only training module with
backend-specific code).

``train.distribution`` selects it: ``off`` (one device), ``data_parallel`` (``train.devices`` devices, 0 = all of
the accelerators, or all CPU devices when there is no accelerator) or ``auto`` (data-parallel over the accelerators
when more than one is visible, else off: a CPU run stays single-device).

**The recipe is unchanged.** ``batch_size`` is the *global* micro-batch and ``batch_size × grad_accum`` the global
effective batch (64 × 8 = 512 in kaggle-1st): each of ``n`` devices computes ``batch_size / n`` samples of every
micro-batch (not divisible: a one-line :class:`~aslfs.errors.ConfigError`). The loader, the learning-rate schedule
(per micro-batch), the warm-up, the accumulation and the global-norm clipping all see the global batch and the
global gradient, so one step on ``n`` devices is one step on one device with the same batch (``tests/training/
test_distribution.py``, up to float summation order). A partial batch (the end of an epoch or of a bucketing window)
is trimmed to a multiple of ``n`` rows (at most ``n − 1`` rows, a different random set each epoch).

**Backends.**

- JAX: Keras' distribution API, ``keras.distribution.DataParallel`` over a one-axis device mesh (variables
  replicated, every input sharded on its batch axis). The compiled step is one global (GSPMD) program: the loss,
  gradients and BatchNorm moments are reductions over the global batch, for which XLA inserts the all-reduces.
- TensorFlow: ``tf.distribute.MirroredStrategy`` (model built and compiled inside ``strategy.scope()``); each
  replica runs the step on its shard. Three things are made global here: the loss is divided by the number of
  replicas (:func:`scale_loss`; the replicas' gradients then sum to the global mean's), the optimizer sums the
  gradients across replicas *before* clipping and accumulation (:func:`prepare_optimizer`; Keras would clip each
  replica's part and accumulate per replica), and :func:`all_reduce` sums the BatchNorm moments and takes the
  maximum of the backward-target length across replicas.

**Feed batches through ``fit``** (as the trainer does): on TensorFlow, ``train_on_batch`` hands every replica the
*whole* batch instead of a shard (Keras does not distribute it), which trains on the batch ``n`` times over and
counts BatchNorm moments ``n`` times. Keras' ``fit`` under the strategy first averages the replicas' shards of the
first batch to build the model, which fails on the boolean ``padding_mask``; :func:`first_local_batch` builds it
from replica 0's shard instead (``TrainingModel._maybe_symbolic_build``).

**Status.** On both backends one step on 2 devices equals one step on 1 device, and a whole ``train_model``
(epochs, validation, ``model.keras``) runs on 2 virtual CPU devices (``tests/training/test_distribution.py``).
Two things make the TensorFlow side work: one ``MirroredStrategy`` per device set and process
(:func:`_mirrored_strategy`: a second strategy numbers its collectives from the same keys and collides with the
first one's, "Shape mismatch in the collective instance ..."), and validation decoding on one device
(:func:`predict_on_batch`).

**Several processes (hosts), JAX only** (:class:`Cluster`, :func:`join_cluster`; ``aslfs train --coordinator
--num-processes --process-id``): every process runs the same training; JAX joins their devices into one mesh, so
the plan is data-parallel over all of them and the compiled step is the same global program as on one host. The
loader gives each process its slice of every global batch (``SequenceBatches(process_share=...)``), which Keras
assembles into the global input (``jax.make_array_from_process_local_data``). Process 0 (the chief) recovers the
checkpoint, writes the run folder and logs the MLflow run; the others write nothing (they save each model into
memory, in step with the chief, because saving takes every process) and read the chief's checkpoint to resume.
Validation decodes on a single-device copy of the network in every process (:func:`local_copy`), so no collective
runs while the processes decode. Two processes with one CPU device each train the weights of one process with two devices, to the
last bit, also across a kill and resume (``tests/training/test_multiprocess.py``).

**BatchNorm statistics are synchronised on both backends** (SyncBN, not per-device statistics like DDP without
SyncBN): :class:`~aslfs.layers.masked_batch_normalization.MaskedBatchNormalization` normalises with the masked
moments of the global micro-batch and updates its moving statistics with them, identically on every replica. On JAX
this is what the global program computes anyway; on TensorFlow :func:`all_reduce` makes it so (two vectors of
channel sums and a count per layer per step: small against the gradient all-reduce). Per-device statistics would
make the result depend on the device count (at a per-device batch of 8, a demo step on 2 devices would normalise
with 4-sample statistics); synchronised ones keep the recipe's statistics of ``batch_size`` samples.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import keras

from aslfs.errors import ConfigError

MODES = ("auto", "off", "data_parallel")


@dataclass(frozen=True)
class Plan:
    """A resolved distribution: ``mode`` ``off`` or ``data_parallel`` over ``devices`` (Keras device names such as
    ``gpu:0``; empty when off). Multi-process (JAX): ``devices`` are the devices of all ``processes``, and this
    process is number ``process``."""

    mode: str = "off"
    devices: tuple[str, ...] = ()
    processes: int = 1
    process: int = 0

    @property
    def replicas(self) -> int:
        return len(self.devices) if self.mode == "data_parallel" else 1

    @property
    def chief(self) -> bool:
        """Whether this process writes the run's files and logs its MLflow run (process 0)."""
        return self.process == 0

    def describe(self) -> str:
        if self.mode == "off":
            return "single device"
        hosts = f" in {self.processes} processes" if self.processes > 1 else ""
        shown = ", ".join(self.devices) if len(self.devices) <= 8 else f"{self.devices[0]} ... {self.devices[-1]}"
        return f"data-parallel on {self.replicas} devices{hosts} ({shown})"


def _devices(kind: str) -> list[str]:
    try:
        return [d.lower() for d in keras.distribution.list_devices(kind)]
    except Exception:  # no runtime for that kind
        return []


def accelerators() -> list[str]:
    """The visible GPUs (else TPUs) as Keras names them."""
    return _devices("gpu") or _devices("tpu")


def resolve(mode: str, devices: int, batch_size: int, where: str = "train") -> Plan:
    """The :class:`Plan` of ``train.distribution`` / ``train.devices`` for a global micro-batch of ``batch_size``.

    Raises:
        ConfigError: an unknown mode, more devices than visible, or a batch not divisible by the device count.
    """
    if mode not in MODES:
        raise ConfigError(f"{where}.distribution: expected one of {', '.join(MODES)}, got {mode!r}")
    process, processes = process_index()
    if processes > 1:
        return _cluster_plan(mode, devices, batch_size, where, process, processes)
    if mode == "off":
        return Plan()
    pool = accelerators()
    if mode == "auto" and len(pool) < 2:
        return Plan()
    pool = pool or _devices("cpu")
    count = devices or len(pool)
    if count > len(pool):
        raise ConfigError(f"{where}.devices: {count} devices requested, {len(pool)} visible ({', '.join(pool)})")
    if count < 2:
        return Plan()
    if batch_size % count:
        raise ConfigError(f"{where}: batch_size {batch_size} is not divisible by {count} devices (the per-device "
                          f"batch is batch_size / devices; batch_size x grad_accum is the global batch)")
    return Plan("data_parallel", tuple(pool[:count]))


def _cluster_plan(mode: str, devices: int, batch_size: int, where: str, process: int, processes: int) -> Plan:
    """Multi-process: data-parallel over every device of every process (accelerators, else CPU devices)."""
    if mode == "off":
        raise ConfigError(f"{where}.distribution: off, but this is process {process} of a {processes}-process "
                          "training; set it to auto or data_parallel")
    pool = accelerators() or _devices("cpu")
    if devices and devices != len(pool):
        raise ConfigError(f"{where}.devices: {devices} devices requested, but a multi-process training uses every "
                          f"device of its processes ({len(pool)}); set it to 0")
    if batch_size % len(pool):
        raise ConfigError(f"{where}: batch_size {batch_size} is not divisible by {len(pool)} devices in "
                          f"{processes} processes (batch_size x grad_accum is the global batch)")
    return Plan("data_parallel", tuple(pool), processes=processes, process=process)


@contextlib.contextmanager
def scope(plan: Plan):
    """Build, compile and fit inside this: Keras' ``DataParallel`` scope (JAX) or the ``MirroredStrategy`` scope
    (TensorFlow); nothing when ``plan`` is off."""
    if plan.mode == "off":
        yield
        return
    backend = keras.backend.backend()
    if backend == "jax":
        # auto_shard_dataset off: the loader itself serves each process its share of every global batch
        with keras.distribution.DataParallel(devices=list(plan.devices), auto_shard_dataset=False).scope():
            yield
    elif backend == "tensorflow":
        with _mirrored_strategy(plan.devices).scope():
            yield
    else:
        raise ConfigError(f"train.distribution: data_parallel is not supported on the {backend} backend")


_STRATEGIES: dict[tuple[str, ...], object] = {}


def _mirrored_strategy(devices: tuple[str, ...]):
    """One ``MirroredStrategy`` per device set and process. Each strategy numbers its collectives from the same
    group and instance keys, and TensorFlow's collective executor keeps the first shapes it saw under a key: a
    second strategy in the same process (a second training, the flow's in-process tasks, a test) would collide
    with the first one's collectives ("Shape mismatch in the collective instance ...")."""
    if devices not in _STRATEGIES:
        import tensorflow as tf

        _STRATEGIES[devices] = tf.distribute.MirroredStrategy(devices=[f"/{d.upper()}" for d in devices])
    return _STRATEGIES[devices]


def _replica_context():
    """TensorFlow's replica context when inside a multi-replica step, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    return ctx if ctx is not None and ctx.num_replicas_in_sync > 1 else None


def all_reduce(x, op: str = "sum"):
    """``x`` summed (``op="sum"``) or maximised (``"max"``) over the replicas of a TensorFlow data-parallel step;
    ``x`` itself elsewhere (one device, or JAX, whose global program already reduces over the whole batch).
    Differentiable for ``sum``."""
    ctx = _replica_context()
    if ctx is None:
        return x
    import tensorflow as tf

    if op == "sum":
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)
    return tf.reduce_max(ctx.all_gather(tf.reshape(x, (1, -1)), axis=0), axis=0)[0] if x.shape.rank == 0 \
        else tf.reduce_max(ctx.all_gather(x[None], axis=0), axis=0)


def first_local_batch(strategy, iterator):
    """TensorFlow data-parallel ``fit``/``evaluate``: the first batch of Keras' epoch ``iterator`` as replica 0's
    shard, for the model's symbolic build. Keras averages the replicas' shards instead (``strategy.reduce("MEAN")``),
    which fails on a boolean input such as ``padding_mask`` (no ``AddN`` for bool); one shard has the same
    structure, dtypes and per-replica shapes."""
    import tensorflow as tf

    batch = None
    for _, _, it in iterator:
        batch = next(it)
        break
    return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0]
                                 if isinstance(v, tf.distribute.DistributedValues) else v, batch)


def predict_on_batch(model, x):
    """``model.predict_on_batch(x)`` as NumPy, on one device. Under a TensorFlow data-parallel strategy Keras'
    ``*_on_batch`` methods do not split the batch over the replicas (``predict_on_batch`` returns one replica's
    share), so validation decodes there with one traced call of the model in the cross-replica context (mirrored
    weights are read once; the decode is cheap against training)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            fn = getattr(model, "_aslfs_one_device_call", None)
            if fn is None:
                fn = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
                model._aslfs_one_device_call = fn
            return keras.tree.map_structure(lambda v: v.numpy(), fn(x))
    return model.predict_on_batch(x)


def num_replicas() -> int:
    """Replicas of the TensorFlow data-parallel step being traced (1 elsewhere)."""
    ctx = _replica_context()
    return 1 if ctx is None else int(ctx.num_replicas_in_sync)


def scale_loss(loss):
    """The replica's loss divided by the number of replicas (TensorFlow data-parallel step), so that the summed
    replica gradients are the gradient of the global batch mean; ``loss`` elsewhere."""
    ctx = _replica_context()
    return loss if ctx is None else loss / float(ctx.num_replicas_in_sync)


_GLOBAL_CLASSES: dict[type, type] = {}


def prepare_optimizer(optimizer, plan: Plan):
    """Make ``optimizer`` see the global gradient (TensorFlow data-parallel: sum the replicas' gradients before
    loss-scale checks, clipping and accumulation, instead of Keras' sum inside the final update). Returned as is
    for one device and on JAX."""
    if plan.mode == "off" or keras.backend.backend() != "tensorflow":
        return optimizer
    for opt in (optimizer, getattr(optimizer, "inner_optimizer", None)):
        if opt is not None:
            opt.__class__ = _global_class(type(opt), reduce_in_apply=opt is optimizer)
    return optimizer


def _global_class(base: type, reduce_in_apply: bool) -> type:
    key = (base, reduce_in_apply)
    if key not in _GLOBAL_CLASSES:

        def apply(self, grads, trainable_variables=None):
            ctx = _replica_context()
            if ctx is not None:
                import tensorflow as tf

                grads = list(grads)
                present = [i for i, g in enumerate(grads) if g is not None]
                reduced = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
                for i, g in zip(present, reduced):
                    grads[i] = g
            return base.apply(self, grads, trainable_variables)

        def _all_reduce_sum_gradients(self, grads_and_vars):
            return list(grads_and_vars)  # already summed in apply

        def _backend_apply_gradients(self, grads, trainable_variables):
            ctx = _replica_context()
            if ctx is None or not self.gradient_accumulation_steps:
                return base._backend_apply_gradients(self, grads, trainable_variables)
            # Keras' accumulation branches on the step inside the replica, and its update branch synchronises
            # (merge_call), which tf.distribute refuses; branch in the cross-replica context instead.
            ctx.merge_call(_accumulate_across, args=(self, list(grads), list(trainable_variables)))

        attrs = {"_all_reduce_sum_gradients": _all_reduce_sum_gradients,
                 "_backend_apply_gradients": _backend_apply_gradients, "__module__": base.__module__,
                 "__qualname__": base.__qualname__}
        if reduce_in_apply:
            attrs["apply"] = apply
        _GLOBAL_CLASSES[key] = type(base.__name__, (base,), attrs)
    return _GLOBAL_CLASSES[key]


def _accumulate_across(strategy, optimizer, grads, variables):
    """Gradient accumulation of a TensorFlow data-parallel step, in the cross-replica context: ``grads`` (per
    replica, already summed over the replicas, so equal) are added to the accumulators, or, every
    ``gradient_accumulation_steps``-th micro-step, averaged with them, clipped and applied (Keras' own semantics)."""
    from keras import ops

    steps = optimizer.gradient_accumulation_steps
    accumulators = [optimizer._accumulated_gradients[optimizer._get_variable_index(v)] for v in variables]

    def add(acc, g):
        return acc.assign_add(g)

    def accumulate():
        for acc, g in zip(accumulators, grads):
            strategy.extended.update(acc.value, add, args=(g,), group=False)
        return ops.zeros((), "bool")

    def replica_update(grads, variables):
        averaged = [(g + acc.value) / steps for g, acc in zip(grads, accumulators)]
        averaged = optimizer._clip_gradients(averaged)
        optimizer._apply_weight_decay(variables)
        optimizer._backend_update_step(averaged, variables, optimizer.learning_rate)

    def update():
        strategy.extended.call_for_each_replica(replica_update, args=(grads, variables))
        for acc in accumulators:
            acc.assign(ops.zeros(acc.shape, acc.dtype))
        return ops.ones((), "bool")

    ops.cond((optimizer._iterations + 1) % steps == 0, update, accumulate)


# ---------------------------------------------------------------------------------------------------- multi-process
@dataclass(frozen=True)
class Cluster:
    """How to join a multi-process (multi-host) training: the coordinator's ``host:port`` (process 0 listens
    there), the number of processes and this process's number (0 = the chief)."""

    coordinator: str
    processes: int
    process: int

    ENV = ("ASLFS_COORDINATOR", "ASLFS_NUM_PROCESSES", "ASLFS_PROCESS_ID")

    @classmethod
    def from_args(cls, coordinator: str | None, processes: int | None, process: int | None,
                  environ=None) -> "Cluster | None":
        """The cluster given by the flags, each falling back to its environment variable (:attr:`ENV`: a cluster
        launcher sets them per process); None when none is given (a one-process training).

        Raises:
            ConfigError: a partial or inconsistent description.
        """
        import os

        environ = os.environ if environ is None else environ
        given = [coordinator, processes, process]
        for i, name in enumerate(cls.ENV):
            if given[i] is None and environ.get(name, "") != "":
                given[i] = environ[name]
        if all(v is None for v in given):
            return None
        flags = ("--coordinator", "--num-processes", "--process-id")
        missing = [f"{flag} ({env})" for flag, env, v in zip(flags, cls.ENV, given) if v is None]
        if missing:
            raise ConfigError(f"multi-process training: {', '.join(missing)} not given")
        try:
            count, index = int(given[1]), int(given[2])
        except ValueError:
            raise ConfigError(f"multi-process training: --num-processes and --process-id must be integers, got "
                              f"{given[1]!r} and {given[2]!r}") from None
        host, _, port = str(given[0]).rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"multi-process training: --coordinator must be HOST:PORT, got {given[0]!r}")
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"multi-process training: process id {index} is not in 0..{count - 1}")
        return cls(str(given[0]), count, index)


def join_cluster(cluster: Cluster | None) -> None:
    """Join a multi-process training before anything else touches the devices (JAX only: each process runs the
    same program and JAX makes one global device mesh of all processes' devices; CPU devices talk over Gloo).
    Does nothing for ``None`` or a one-process cluster.

    Raises:
        ConfigError: another backend than JAX, or the coordinator cannot be joined (one line).
    """
    if cluster is None or cluster.processes == 1:
        return
    backend = keras.backend.backend()
    if backend != "jax":
        raise ConfigError(f"multi-process training needs the JAX backend (KERAS_BACKEND=jax), this is {backend}")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives between processes
    try:
        keras.distribution.initialize(cluster.coordinator, num_processes=cluster.processes,
                                      process_id=cluster.process)
    except Exception as err:  # JAX's own errors (unreachable coordinator, timeout, already initialised)
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ConfigError(f"multi-process training: process {cluster.process} of {cluster.processes} cannot join "
                          f"the coordinator {cluster.coordinator}: {first}") from None


def process_index() -> tuple[int, int]:
    """``(this process, number of processes)`` of the training: ``(0, 1)`` unless :func:`join_cluster` joined one."""
    if keras.backend.backend() != "jax":
        return 0, 1
    import jax

    return int(jax.process_index()), int(jax.process_count())


def barrier(name: str) -> None:
    """Wait until every process of a multi-process training reaches ``barrier(name)``; nothing in one process."""
    if process_index()[1] > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


@contextlib.contextmanager
def undistributed():
    """No Keras distribution inside (JAX): models built and run here live on this process's first device."""
    if keras.backend.backend() != "jax":
        yield
        return
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def local_copy(net):
    """Multi-process: a copy of ``net`` (a FingerSpeller) on this process's first device, for validation decoding
    without collectives (every process decodes the whole validation set, so the processes stay in step and agree);
    ``net`` itself otherwise. :func:`sync_copy` refreshes its weights."""
    if process_index()[1] == 1:
        return net
    with undistributed():
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(net.dtype_policy)
        try:
            copy = net.__class__.from_config(net.get_config())
        finally:
            keras.config.set_dtype_policy(previous)
    if [tuple(w.shape) for w in copy.weights] != [tuple(w.shape) for w in net.weights]:
        raise RuntimeError("local_copy: the copy's weights do not match the network's")
    return copy


def sync_copy(copy, net) -> None:
    """Give :func:`local_copy`'s ``copy`` the current weights of ``net`` (replicated, so every process holds them
    whole: a local read, no collective). No-op when ``copy`` is ``net``."""
    if copy is net:
        return
    import numpy as np

    for target, source in zip(copy.weights, net.weights):
        target.assign(np.asarray(source.value))
