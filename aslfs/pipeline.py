"""Running the whole pipeline: the stages of ``dvc.yaml``, level by level, independent stages side by side.

``aslfs demo`` (the README's main command, via ``make demo``) calls :func:`run_demo`; the Prefect pipeline flow
(``flows/pipeline.py``) schedules the same levels on its task runners. Only documented DVC commands are used:

1. ``dvc dag --dot`` gives the stage graph, cut into levels (:func:`dag_levels`: ``synth`` | ``select`` |
   ``normalize`` | ``folds`` | ``train1@…`` | ``oof`` | ``train2@…`` | ``export`` | ``evaluate``); the stages of a
   level depend only on earlier levels.
2. Level by level, ``dvc status --json`` names the stages that are out of date (:func:`changed_stages`), and each
   runs as ``dvc --wait-for-lock repro --single-item STAGE`` (:func:`run_stage`), up to ``jobs`` at once: the
   round-1 folds and the round-2 seeds train at the same time. DVC itself runs the stage's ``cmd``, checks its
   outputs and writes its entry in ``dvc.lock``, as in a plain ``dvc repro``; nothing of DVC is re-implemented.

Why several ``dvc repro`` at once in one checkout is safe: DVC holds the repository lock only for its bookkeeping
(reading the graph and status, hashing outputs, writing ``dvc.lock``) and releases it while the stage's command runs;
``--wait-for-lock`` makes a process wait for that lock instead of failing. The stages of one level have disjoint
outputs (each fold or seed writes its own folder), and ``dvc.lock`` is rewritten under the repository lock one stage
at a time, so each stage records exactly the deps it read and the outs it wrote: ``dvc status`` is clean afterwards
and ``dvc repro`` right after is a no-op.

Each stage's whole output goes to ``artifacts/logs/<stage>.log``; the console gets a progress view
(:class:`ProgressView`): which stages run, each training's epoch and its estimated time left, the stages' result
lines, and an estimate of the time left for the whole pipeline.

Stage commands run in :func:`project_env`: the virtual environment's ``bin`` first on ``PATH`` (so ``python`` and
``dvc`` are the project's own), telemetry off, and TensorFlow's CPU threads divided between the stages that run at
the same time (:func:`thread_env`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from aslfs.errors import AslfsError

LOG_DIR = Path("artifacts") / "logs"
DVC = str(Path(sys.executable).parent / "dvc")  # the project environment's DVC


def project_env(root: Path) -> dict[str, str]:
    """The environment stage commands run in: the venv first on PATH, telemetry off, the project root known."""
    from aslfs import env

    env.setup()
    environ = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    environ["PATH"] = bindir + os.pathsep + environ.get("PATH", "")
    environ["ASLFS_ROOT"] = str(root)
    environ.setdefault("PYTHONUNBUFFERED", "1")
    return environ


def thread_env(environ: dict[str, str], jobs: int, cpus: int | None = None) -> dict[str, str]:
    """``environ`` with TensorFlow's and OpenMP's thread pools sized for ``jobs`` stages sharing ``cpus`` cores
    (``cpus // jobs`` threads each, at least 1). By default every TensorFlow process takes a pool as wide as the
    machine, and ``jobs`` of them oversubscribe it; values the user exported are kept."""
    cpus = cpus or os.cpu_count() or 1
    per_job = str(max(1, cpus // max(1, jobs)))
    out = dict(environ)
    for key in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        out.setdefault(key, per_job)
    out.setdefault("TF_NUM_INTEROP_THREADS", "2" if jobs > 1 else str(min(cpus, 2)))
    return out


def dvc(root: Path, *args: str, environ: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [DVC, *args]
    proc = subprocess.run(cmd, cwd=root, env=environ or project_env(root))
    if check and proc.returncode != 0:
        raise AslfsError(f"`dvc {' '.join(args)}` failed with exit status {proc.returncode} (see the output above)")
    return proc


def _dvc_output(root: Path, *args: str, environ: dict[str, str] | None = None) -> str:
    proc = subprocess.run([DVC, *args], cwd=root,
                          env=environ or project_env(root), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise AslfsError(f"`dvc {' '.join(args)}` failed (exit {proc.returncode}): {tail[0]}")
    return proc.stdout


_DOT_EDGE = re.compile(r'^"([^"]+)"\s*->\s*"([^"]+)"')
_DOT_NODE = re.compile(r'^"([^"]+)";')


def dag_levels(root: Path, environ: dict[str, str] | None = None) -> list[list[str]]:
    """Stage addresses level by level, upstream first, from ``dvc dag --dot``."""
    nodes: list[str] = []
    upstream: dict[str, set[str]] = {}
    for line in _dvc_output(root, "dag", "--dot", environ=environ).splitlines():
        line = line.strip()
        if edge := _DOT_EDGE.match(line):
            upstream.setdefault(edge.group(2), set()).add(edge.group(1))
        elif node := _DOT_NODE.match(line):
            nodes.append(node.group(1))
    levels: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(nodes):
        level = sorted(n for n in nodes if n not in done and upstream.get(n, set()) <= done)
        if not level:
            raise AslfsError("dvc dag: the stage graph has a cycle")
        levels.append(level)
        done.update(level)
    return levels


def changed_stages(root: Path, addresses: list[str], environ: dict[str, str] | None = None) -> list[str]:
    """The stages among ``addresses`` that ``dvc status`` reports as out of date."""
    status = json.loads(_dvc_output(root, "status", "--json", *addresses, environ=environ) or "{}")
    return [a for a in addresses if a in status]


def run_stage(root: Path, address: str, environ: dict[str, str], force: bool = False,
              on_line: Callable[[str], None] | None = None, log_dir: Path | None = None) -> float:
    """``dvc --wait-for-lock repro --single-item ADDRESS`` (DVC runs its cmd and records it in ``dvc.lock``).

    The combined output goes line by line to ``on_line`` and, when ``log_dir`` is given, to
    ``log_dir/<address>.log``. Returns the wall time; a failure raises one line (the stage's last output line and
    where its log is)."""
    cmd = [DVC, "--wait-for-lock", "repro", "--single-item",
           *(["--force"] if force else []), address]
    log_path = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{address.replace('/', '_')}.log"
    start = time.time()
    last: list[str] = []
    with open(log_path, "w") if log_path else open(os.devnull, "w") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            line = line.rstrip("\n")
            if line.strip():
                last = [line]
            if on_line is not None:
                on_line(line)
        code = proc.wait()
    if code != 0:
        where = f" (whole output: {log_path})" if log_path else ""
        raise AslfsError(f"stage {address} failed (exit {code}): {(last or ['no output'])[-1].strip()}{where}")
    return time.time() - start


# -------------------------------------------------------------------------------------------------- progress view
#: Output lines that say nothing a person needs while the pipeline runs (they stay in the stage's log): DVC's own
#: bookkeeping, Keras' per-epoch lines (the view shows epochs itself), native TensorFlow notices.
_ROUTINE = re.compile(
    r"^(Running stage '|> |Updating lock file|Generating lock file|Use `dvc push`|Stage '.*' didn't change|"
    r"Epoch \d+/\d+$|\d+/\d+ - \d+s - |INFO: Created TensorFlow Lite XNNPACK delegate|"
    r"E0000 .*oneDNN supports DT_BOOL|To track the changes with git|\s*git add )")
_EPOCH = re.compile(r"^Epoch (\d+)/(\d+)$")
_EPOCH_END = re.compile(r"^\d+/\d+ - (\d+)s - ")
#: a Prefect log line: "HH:MM:SS.mmm | LEVEL | Flow run 'name' - message" -> the message (and its level)
_PREFECT_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| (\w+)\s*\| (?:(?:Flow|Task) run '[^']*'|[\w.]+) - (.*)$")


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass
class _Stage:
    address: str
    started: float
    epochs: int = 0
    epoch: int = 0
    epoch_started: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    last_report: float = 0.0

    @property
    def per_epoch(self) -> float | None:
        """Mean seconds per epoch after the first (which includes building and compiling the training step, and says
        little about the others); None before the second epoch ended."""
        rest = self.epoch_seconds[1:]
        return sum(rest) / len(rest) if rest else None

    def seconds_left(self, now: float) -> float | None:
        """Time left of a training stage from its epoch times so far (None until :attr:`per_epoch` is known)."""
        if self.per_epoch is None or not self.epochs:
            return None
        return max(0.0, (self.epochs - self.epoch) * self.per_epoch - (now - self.epoch_started))


class ProgressView:
    """The console view of a pipeline run: one line per stage start and end, a training's epoch with its time left
    (at most every ``every`` seconds per stage, and at its last epoch), the stages' result lines, and the pipeline's
    estimated time left (:meth:`pipeline_left_locked`). Thread-safe: stages of one level report from their own
    threads."""

    def __init__(self, planned: list[list[str]], epochs: dict[str, int] | None = None, every: float = 30.0,
                 write: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time):
        self.planned = [list(level) for level in planned]
        self.epochs = epochs or {}
        self.every = every
        self.clock = clock
        self.start = clock()
        self._write = write or (lambda text: print(text, flush=True))
        self._lock = threading.Lock()
        self._running: dict[str, _Stage] = {}
        self._done: set[str] = set()
        self._per_epoch: dict[str, float] = {}  # per round prefix ("train1", "train2"): the last seconds per epoch

    def _say(self, address: str, text: str) -> None:
        self._write(f"[{_clock(self.clock() - self.start):>6}] {address:<10} {text}")

    def started(self, address: str) -> None:
        with self._lock:
            self._running[address] = _Stage(address, self.clock(), epochs=self.epochs.get(address, 0))
            self._say(address, "started")

    def line(self, address: str, text: str) -> None:
        """One output line of a running stage."""
        now = self.clock()
        with self._lock:
            stage = self._running.get(address)
            if stage is None:
                return
            if m := _EPOCH.match(text.strip()):
                stage.epoch, stage.epochs = int(m.group(1)) - 1, int(m.group(2))
                stage.epoch_started = now
                return
            if _EPOCH_END.match(text.strip()):
                stage.epoch += 1
                stage.epoch_seconds.append(now - stage.epoch_started)
                stage.epoch_started = now
                if stage.per_epoch is not None:
                    self._per_epoch[address.split("@")[0]] = stage.per_epoch
                if now - stage.last_report >= self.every or stage.epoch == stage.epochs:
                    stage.last_report = now
                    left = stage.seconds_left(now)
                    total = self.pipeline_left_locked(now)
                    self._say(address, f"epoch {stage.epoch}/{stage.epochs}"
                              + (f", {_clock(left)} left" if left is not None else "")
                              + (f" (pipeline ≈ {_clock(total)} left)" if total is not None else ""))
                return
            text = text.rstrip()
            if not text.strip() or _ROUTINE.match(text.strip()):
                return
            if m := _PREFECT_LINE.match(text):
                text = m.group(2) if m.group(1) == "INFO" else f"{m.group(1)}: {m.group(2)}"
            self._say(address, text.strip())

    def finished(self, address: str, seconds: float, ok: bool = True) -> None:
        with self._lock:
            self._running.pop(address, None)
            self._done.add(address)
            self._say(address, f"{'done' if ok else 'FAILED'} in {_clock(seconds)}")

    def skipped(self, addresses: list[str]) -> None:
        with self._lock:
            self._done.update(addresses)
            if addresses:
                self._write(f"[{_clock(self.clock() - self.start):>6}] up to date: {', '.join(addresses)}")

    def pipeline_left_locked(self, now: float) -> float | None:
        """Estimated seconds left for the whole run: the running level's slowest stage, then, per later level, its
        trainings' epochs at the last measured seconds per epoch of that round (or of any round). None until a
        training has finished its second epoch."""
        if not self._per_epoch:
            return None
        any_rate = list(self._per_epoch.values())[-1]

        def rate(address: str) -> float:
            return self._per_epoch.get(address.split("@")[0], any_rate)

        # a running training without an estimate of its own yet (its first epoch) counts at its round's rate
        left = max((own if (own := s.seconds_left(now)) is not None else max(0, s.epochs - s.epoch) * rate(s.address)
                    for s in self._running.values()), default=0.0)
        for level in self.planned:
            todo = [a for a in level if a not in self._done and a not in self._running]
            if not todo:
                continue
            level_left = 0.0
            for address in todo:
                level_left = max(level_left, self.epochs.get(address, 0) * rate(address))
            left += level_left
        return left


# ------------------------------------------------------------------------------------------------ running it all
def stage_epochs(root: Path) -> dict[str, int]:
    """Epochs of the training stages ``train1@FOLD`` / ``train2@SEED`` from ``params.yaml`` (for time estimates)."""
    from aslfs.config import load_params

    params = load_params(root / "params.yaml")
    out = {f"train1@{f}": params.train.round1.epochs for f in params.pipeline.round1_folds}
    out.update({f"train2@{s}": params.train.round2.epochs for s in params.pipeline.round2_seeds})
    return out


def run_pipeline(root: Path, environ: dict[str, str], jobs: int = 2, force: bool = False,
                 view: ProgressView | None = None, log_dir: Path | None = None) -> dict[str, float]:
    """Run the out-of-date stages of ``root``'s pipeline, level by level, up to ``jobs`` stages at once; returns
    each run stage's wall time. The first failure stops the run after the level's running stages end (their
    outputs are kept: a rerun resumes), with that stage's one-line error."""
    levels = dag_levels(root, environ)
    if view is None:
        view = ProgressView(levels, stage_epochs(root))
    log_dir = log_dir or (root / LOG_DIR)
    timings: dict[str, float] = {}
    for level in levels:
        todo = level if force else changed_stages(root, level, environ)
        view.skipped([a for a in level if a not in todo])
        if not todo:
            continue
        stage_environ = thread_env(environ, min(jobs, len(todo)))

        def one(address: str) -> float:
            view.started(address)
            try:
                seconds = run_stage(root, address, stage_environ, force,
                                    on_line=lambda text: view.line(address, text), log_dir=log_dir)
            except AslfsError:
                view.finished(address, 0.0, ok=False)
                raise
            view.finished(address, seconds)
            return seconds

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {address: pool.submit(one, address) for address in todo}
            errors = []
            for address, future in futures.items():
                try:
                    timings[address] = future.result()
                except AslfsError as err:
                    errors.append(err)
        if errors:
            raise errors[0]
    return timings


def read_summary(root: Path) -> dict:
    """Collect the headline results the pipeline wrote (whatever exists)."""
    summary: dict = {}
    metrics = root / "artifacts" / "metrics" / "evaluate.json"
    if metrics.exists():
        summary["metrics"] = json.loads(metrics.read_text())
    tflite = root / "artifacts" / "submission" / "model.tflite"
    if tflite.exists():
        summary["tflite"] = {"path": str(tflite.relative_to(root)), "bytes": tflite.stat().st_size}
    registry = root / "artifacts" / "registry.json"
    if registry.exists():
        summary["registry"] = json.loads(registry.read_text())
    report = root / "data" / "selected" / "report.json"
    if report.exists():
        summary["select"] = json.loads(report.read_text())
    return summary


def format_summary(summary: dict, seconds: float) -> str:
    lines = [f"pipeline finished in {seconds:.0f} s"]
    m = summary.get("metrics")
    if m:
        lines.append(
            "held-out score {score:.4f} (CER {cer:.4f}, after post-processing {score_pp:.4f})".format(
                score=m.get("score", float("nan")), cer=m.get("cer", float("nan")), score_pp=m.get("score_pp", float("nan"))
            )
        )
    t = summary.get("tflite")
    if t:
        lines.append(f"TFLite model: {t['path']} ({t['bytes'] / 1e6:.2f} MB)")
    r = summary.get("registry")
    if r:
        lines.append(f"MLflow model: {r.get('name')} version {r.get('version')} (alias: {r.get('alias') or 'none'})")
    s = summary.get("select")
    if s and not m:
        lines.append(f"selected {s.get('sequences', '?')} sequences from {s.get('files', '?')} parquet files")
    return "\n".join(lines)


def run_demo(root: str | Path = ".", force: bool = False, jobs: int | None = None) -> dict:
    """Run the pipeline of ``root`` (out-of-date stages, ``jobs`` at once; default ``pipeline.jobs``) with the
    progress view, and print its summary."""
    root = Path(root).resolve()
    if not (root / "dvc.yaml").exists():
        raise AslfsError(f"{root}: no dvc.yaml here; run from the project root")
    from aslfs.config import load_params

    jobs = jobs or load_params(root / "params.yaml").pipeline.jobs
    environ = project_env(root)
    environ.setdefault("ASLFS_PIPELINE_RUN", time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6])
    from aslfs.servers import PrefectForRun

    start = time.time()
    with PrefectForRun(root) as prefect_server:
        if prefect_server.url:
            environ["PREFECT_API_URL"] = prefect_server.url
        print(f"running the pipeline of {root.name}, up to {jobs} stages at once; each stage's whole output: "
              f"{LOG_DIR}/<stage>.log", flush=True)
        timings = run_pipeline(root, environ, jobs=jobs, force=force)
    summary = read_summary(root)
    summary["stage_seconds"] = timings
    print(format_summary(summary, time.time() - start))
    return summary
