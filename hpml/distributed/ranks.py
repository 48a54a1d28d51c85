"""Local ranks: how ``hpml train --nproc K`` (and :class:`~hpml.distributed.pool.RankPool`)
makes its processes, and how they end.  What the ranks run is the caller's business
(:mod:`hpml.distributed.launch` for training).

:func:`spawn` starts K ranks with ``torch.multiprocessing`` (start method ``spawn``).
They meet through a file in a fresh temporary folder (``file://`` rendezvous: no port to
pick, nothing two concurrent launches could collide on).  The launcher polls them and,
the moment one fails or dies, stops all of them and raises one line naming the rank and
its error.  No rank outlives the launcher and none dies without its exit hooks:

* the launcher SIGTERMs its ranks in ``finally`` (SIGKILL after :data:`GRACE_S`);
* a rank turns SIGTERM into an exception, so it leaves its group, stops its loader
  workers and runs multiprocessing's exit hooks (its named semaphores: else the resource
  tracker warns of leaks; ``pymp-*`` temp folders) before it exits;
* a rank whose launcher was SIGKILLed stops itself the same way, and quietly.
"""

from __future__ import annotations

import gc
import io
import json
import multiprocessing.util
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

import psutil
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hpml.distributed.env import DistEnv, check_nproc, process_group, rank_device, timeout_from
from hpml.environment import VARS
from hpml.errors import HpmlError, RunFailed, is_out_of_memory, one_line_message
from hpml.files import write_bytes_atomic

#: s between the launcher's looks at its ranks (exit codes, error reports).
POLL_S = 0.05
#: s a rank gets to exit after SIGTERM before it is killed.  Its exit waits for its loader
#: workers', each a whole interpreter teardown when spawned: 3.3 s on a busy 2-core machine.
GRACE_S = 10.0
#: Rendezvous folders under the temp dir: ``hpml-ddp-<launcher pid>-<random>``.
WORKDIR_PREFIX = "hpml-ddp-"


class RankFailed(RunFailed):
    """A rank of a distributed run failed; the message names the rank and its error.

    ``exc_type`` is the rank's exception class name, ``traceback`` its formatted
    traceback ("" when the rank died without one, e.g. killed by a signal)."""

    def __init__(self, rank: int, message: str, *, exc_type: str = "", traceback: str = "") -> None:
        super().__init__(f"rank {rank}: {message}")
        self.rank = rank
        self.exc_type = exc_type
        self.traceback = traceback


class Stopped(BaseException):
    """SIGTERM in a rank, raised in its main thread (see the module doc)."""


# --- errors as one line ------------------------------------------------------------

def _is_peer_lost(exc: BaseException) -> bool:
    """A collective failed because another rank went away: a symptom, never the cause."""
    if isinstance(exc, getattr(dist, "DistError", ())):  # nccl, the stores, the file rendezvous
        return True
    # gloo raises a bare RuntimeError ("Connection reset by peer", "Timed out waiting ...
    # for recv"); only the source path in its message says it is gloo's.
    return isinstance(exc, RuntimeError) and "gloo/" in str(exc)


def describe(exc: BaseException) -> tuple[str, str]:
    """(kind, one-line message) for an exception raised in a rank.

    kind: ``hpml`` (bad input, CLI exit 2), ``failed`` (run failed, exit 1), ``peer``
    (a collective failed because another rank went away) or ``error`` (anything else)."""
    if isinstance(exc, HpmlError):
        return "hpml", one_line_message(exc)
    if isinstance(exc, RunFailed):
        return "failed", one_line_message(exc)
    if is_out_of_memory(exc):
        return "failed", f"out of memory: {one_line_message(exc)}"
    if _is_peer_lost(exc):
        return "peer", f"lost contact with another rank ({one_line_message(exc)})"
    if isinstance(exc, KeyboardInterrupt):
        return "failed", "interrupted"
    if isinstance(exc, Stopped):
        return "failed", "terminated by SIGTERM"
    return "error", f"{type(exc).__name__}: {one_line_message(exc)}"


def rank_error(rank: int, kind: str, message: str, *, exc_type: str = "", tb: str = "") -> Exception:
    """The launcher-side exception for a rank's failure (HpmlError stays HpmlError)."""
    if kind == "hpml":
        return HpmlError(f"rank {rank}: {message}")
    return RankFailed(rank, message, exc_type=exc_type, traceback=tb)


# --- the launcher ------------------------------------------------------------------

def default_threads(nproc: int) -> int:
    """Intra-op threads per rank: the host's cores shared out ($OMP_NUM_THREADS wins)."""
    threads = VARS["OMP_NUM_THREADS"].get()
    if threads is not None:
        return threads
    return max(1, (os.cpu_count() or 1) // nproc)


def spawn(
    fn: Callable[..., Any],
    nproc: int,
    args: Sequence[Any] = (),
    *,
    device: str = "cpu",
    timeout: float | None = None,
    threads: int | None = None,
) -> list[Any]:
    """Run ``fn(env, *args)`` on ``nproc`` local ranks joined in one process group, and
    return their results in rank order.

    ``fn`` must be importable by name (a module-level function: ranks are spawned, not
    forked).  ``device`` picks the backend and each rank's device (``cuda`` ->
    ``cuda:RANK``); ``timeout`` (s) bounds every collective; ``threads`` is each rank's
    ``torch.set_num_threads`` (default: the cores shared out).  A rank that raises, or
    dies, stops the others and raises here: :class:`HpmlError` for bad input, else
    :class:`RankFailed`, naming the rank and its error in one line.
    """
    check_nproc(nproc, device)
    seconds = timeout_from(timeout).total_seconds()
    threads = threads or default_threads(nproc)
    ctx = mp.get_context("spawn")
    sweep_orphan_workdirs()
    # The launcher's pid in the name lets a later launch remove it if this one is killed
    # with -9 before its `finally` runs (the ranks also remove it when they see it die).
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    procs: list[Any] = []
    try:
        for rank in range(nproc):
            proc = ctx.Process(
                target=_rank_main,
                args=(rank, nproc, str(workdir), fn, tuple(args), device, seconds, threads, os.getpid()),
                name=f"hpml-rank-{rank}",
                daemon=False,  # a daemonic rank could not start DataLoader workers
            )
            proc.start()
            procs.append(proc)
        while True:
            failure = _first_failure(workdir, procs)
            if failure is not None:
                raise failure
            if all(p.exitcode == 0 for p in procs):
                return [_load_result(workdir, rank) for rank in range(nproc)]
            time.sleep(POLL_S)
    finally:
        stop(procs)
        shutil.rmtree(workdir, ignore_errors=True)


def sweep_orphan_workdirs(root: str | Path | None = None) -> list[Path]:
    """Remove rendezvous folders of launchers that no longer run (killed with -9)."""
    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        pid = folder.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or psutil.pid_exists(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _first_failure(workdir: Path, procs: list) -> Exception | None:
    # Read the reports before the exit codes: a rank that died before another rank
    # reported "lost contact" is then already visible as dead.
    reports = []
    for path in workdir.glob("error-*.json"):
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # being written (written atomically, so this is rare): next poll
    reported = {r["rank"] for r in reports}
    silent = [(rank, p.exitcode) for rank, p in enumerate(procs)
              if p.exitcode not in (None, 0) and rank not in reported]
    causes = [r for r in reports if r["kind"] != "peer"]
    if causes:
        # The earliest real error is the cause; later ones are usually its echoes.
        first = min(causes, key=lambda r: r["time"])
        return rank_error(first["rank"], first["kind"], first["message"],
                          exc_type=first["type"], tb=first["traceback"])
    if silent:
        rank, code = silent[0]
        return RankFailed(rank, _exit_description(code))
    if reports and any(p.exitcode is not None for p in procs):
        # Only "lost contact" reports, and a rank is gone: its own report may still come.
        first = min(reports, key=lambda r: r["time"])
        if time.time() - first["time"] > 1.0:
            return rank_error(first["rank"], first["kind"], first["message"],
                              exc_type=first["type"], tb=first["traceback"])
    return None


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"died, killed by {name} (signal {-code}), without reporting an error"
    return f"exited with code {code} without reporting an error (see its output above)"


def stop(procs: Sequence[Any], grace: float = GRACE_S) -> None:
    """SIGTERM every live rank and its descendants (loader workers), SIGKILL what is
    still alive after ``grace`` seconds, and reap the ranks."""
    victims: list[psutil.Process] = []
    for proc in procs:
        if proc.exitcode is not None or proc.pid is None:
            continue
        try:
            root = psutil.Process(proc.pid)
            victims.extend(root.children(recursive=True))
            victims.append(root)
        except psutil.NoSuchProcess:
            continue
    for victim in victims:
        try:
            victim.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(victims, timeout=grace)
    for victim in alive:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)
    for proc in procs:
        if proc.pid is not None:
            proc.join(timeout=grace)


def _load_result(workdir: Path, rank: int) -> Any:
    # weights_only=False: the file was written a moment ago by our own rank.
    return torch.load(workdir / f"result-{rank}.pt", weights_only=False)


# --- a rank ------------------------------------------------------------------------

def _raise_stopped(signum: int, frame: Any) -> None:
    raise Stopped()


def _watch_launcher(launcher_pid: int, workdir: str, gone: threading.Event) -> None:
    """Stop this rank when its launcher disappears (SIGKILL: its ``finally`` never ran),
    and remove the rendezvous folder it can no longer remove."""
    while os.getppid() == launcher_pid:
        time.sleep(1.0)
    gone.set()
    shutil.rmtree(workdir, ignore_errors=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(1)  # the main thread never got back to Python (stuck in a collective)


def _rank_main(rank: int, nproc: int, workdir: str, fn: Callable[..., Any], args: tuple,
               device: str, timeout_s: float, threads: int, launcher_pid: int) -> None:
    """Body of a spawned rank: join the group, run ``fn``, report the result or the error."""
    signal.signal(signal.SIGTERM, _raise_stopped)
    launcher_gone = threading.Event()
    threading.Thread(target=_watch_launcher, args=(launcher_pid, workdir, launcher_gone), daemon=True).start()
    env = DistEnv(rank, nproc, rank, nproc)
    os.environ.update(env.as_environ())
    torch.set_num_threads(threads)
    # tqdm's default lock is a named multiprocessing semaphore: a rank stopped by the
    # launcher could not release it, and the resource tracker would warn about a leak.
    # Ranks never share a progress bar, so a thread lock does.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    out = Path(workdir)
    code = 1
    try:
        try:
            dev = rank_device(device, rank)
            with process_group(env, dev, init_method=f"file://{out / 'rendezvous'}", timeout=timeout_s):
                result = fn(env, *args)
            buffer = io.BytesIO()
            torch.save(result, buffer)
            write_bytes_atomic(out / f"result-{rank}.pt", buffer.getvalue())
            del result
            code = 0
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # this rank is ending either way
    except BaseException as exc:  # noqa: BLE001 -- reported to the launcher, then exit 1
        kind, message = describe(exc)
        report = {"rank": rank, "kind": kind, "message": message, "type": type(exc).__name__,
                  "time": time.time(), "traceback": traceback.format_exc()}
        del exc
        if not launcher_gone.is_set():  # else nobody reads it, and its folder is gone
            try:
                write_bytes_atomic(out / f"error-{rank}.json", json.dumps(report).encode())
            except OSError:
                pass  # the launcher removed the folder while stopping this rank
    # Skip the interpreter's teardown (seconds with torch loaded): the group is already
    # left, collecting the workload stops its loader workers, and multiprocessing's exit
    # hook releases the semaphores this rank created (tqdm's lock, loader queues).
    gc.collect()
    multiprocessing.util._exit_function()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
