"""Atomic outputs: every file or folder the project writes is written whole next to its target, then renamed over it.

A failure (an exception, a kill) before the rename leaves the previous output untouched and no temporary file
behind (a killed process's temporary *folder* is removed by the next run for the same target, see
:func:`remove_stale_tmp`; a killed process's temporary file is a small hidden sibling, ``.<name>.tmp-*``).

- :func:`atomic_path` — a temporary path for any writer (``model.save(tmp)``, ``df.to_csv(tmp)``), renamed on
  success; it keeps the target's suffix, so writers that choose the format by extension work;
- :func:`write_text`, :func:`write_bytes`, :func:`write_json`, :func:`write_csv` — the common cases;
- :func:`atomic_dir` — the same for a whole folder (a data store);
- :func:`process_lock` — one process at a time through a section that several processes (concurrent stages) run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from glob import escape as glob_escape
from pathlib import Path


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder (created); on success it replaces ``target``, on error it is
    removed and ``target`` is left as it was.

    The temporary name is ``.<stem>.tmp-<random><suffix>`` (hidden, same suffix as ``target``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp-{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        yield tmp
        if tmp.is_file():
            _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, data, *, indent: int | None = 2, sort_keys: bool = True, default=None) -> Path:
    """Write ``data`` as JSON (one trailing newline) to ``path`` atomically; returns ``path``."""
    return write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys, default=default) + "\n")


def write_csv(path: str | os.PathLike, table, **to_csv) -> Path:
    """Write a DataFrame to ``path`` atomically (``index=False`` unless given); returns ``path``."""
    to_csv.setdefault("index", False)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, **to_csv)
    return Path(path)


# ---------------------------------------------------------------------------------------------- folders


def replace_dir(src: str | Path, dst: str | Path) -> None:
    """Move the finished directory ``src`` to ``dst``, replacing whatever ``dst`` was (file or directory)."""
    src, dst = Path(src), Path(dst)
    old = None
    if dst.exists() or dst.is_symlink():
        old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def _tmp_owner() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def _owner_gone(owner: str) -> bool:
    """Whether the process ``pid@host`` that made a temporary directory is dead (only decidable on this host)."""
    pid, _, host = owner.partition("@")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, but not ours to signal
        return False
    return False


def remove_stale_tmp(dst: str | Path) -> list[Path]:
    """Delete the temporary siblings of ``dst`` left by :func:`atomic_dir` runs whose process was killed (SIGKILL,
    power loss: no chance to clean up); a store of the real corpus is tens of GB. Returns what was removed."""
    dst = Path(dst)
    removed = []
    prefix = f".{dst.name}.tmp-"
    for p in dst.parent.glob(f"{glob_escape(prefix)}*"):
        owner = p.name[len(prefix):].partition("-")[2]  # <random>-<pid>@<host>; older names have no owner
        if p.is_dir() and _owner_gone(owner):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_dir(dst: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``dst``; on success it replaces ``dst``, on error it is removed.

    The name ``.<dst>.tmp-<random>-<pid>@<host>`` records its owner, so that a later run removes what a killed run
    left behind (:func:`remove_stale_tmp`)."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(dst)
    tmp = dst.with_name(f".{dst.name}.tmp-{uuid.uuid4().hex[:8]}-{_tmp_owner()}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, dst)


@contextlib.contextmanager
def process_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing, never removed) for the ``with`` block: the
    processes that take the same path run the block one at a time (POSIX ``flock``; released by the kernel if the
    holder dies)."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
