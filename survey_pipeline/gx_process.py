"""great-expectations in a process of its own, imported while the run does other work.

Importing great-expectations costs about 3 s of CPU (it pulls in scipy.stats, altair
and more), once per process. `survey-pipeline run` starts one worker process (`started`)
as soon as it knows that a stage will run a checkpoint; the worker imports GX at once,
on the other core, while this process ingests and validates with pandera. The stages
run their checkpoints through `call` or `submit`: in the worker when one was started,
else here (a single stage verb, as `dvc repro` runs it: nothing to overlap).

`call` waits for the result. With `submit` and `defer` a stage lets its checkpoint run
on while the next stages run, and completes its outputs later (`finish_deferred`); the
stage that publishes from checked data finishes what was deferred first (the report,
before it stages its outputs or updates the figure cache; a no-op when nothing was
deferred), the run at the end of the `started` block at the latest, and, when a later stage
fails, before it reports that failure: a failed checkpoint then stops the run with its
own error, as if it had been waited for, and nothing is committed either way.

Arguments and results travel pickled, except the objects given to `started` (the
questionnaire spec, which holds read-only mappings that do not pickle): the worker is
forked after they exist and uses its own copy, found by identity.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, TypeVar

Result = TypeVar("Result")

PR_SET_PDEATHSIG = 1  # linux/prctl.h

_worker: ProcessPoolExecutor | None = None
_inherited: tuple[Any, ...] = ()
_deferred: list[Callable[[], None]] = []


@dataclass(frozen=True)
class _Inherited:
    """Stands for `_inherited[index]` in a call to the worker."""

    index: int


@contextmanager
def started(enabled: bool, *inherited: Any) -> Iterator[None]:
    """With `enabled`, a worker that imports GX now and runs `call`'s functions until the block ends;
    the `inherited` objects reach it as forked copies, not pickled."""
    global _worker, _inherited
    if not enabled or _worker is not None:
        yield
        return
    _inherited = inherited
    # fork: the worker starts with what this process imported (pandas, the spec models)
    _worker = ProcessPoolExecutor(
        max_workers=1, mp_context=get_context("fork"), initializer=tied_to_parent, initargs=(os.getpid(),)
    )
    try:
        _worker.submit(import_gx)
        try:
            yield
        except Exception:
            finish_deferred()  # a failed checkpoint stops the run with its own error, as if waited for
            raise
        finish_deferred()
    except BaseException:
        _stop(_worker)  # failed or stopped (SIGINT, SIGTERM)
        raise
    else:
        _worker.shutdown(wait=True)
    finally:
        _worker, _inherited = None, ()
        _deferred.clear()


def call(function: Callable[..., Result], *args: Any) -> Result:
    """`function(*args)` in the GX worker when one is running (arguments and result are pickled), else here."""
    return submit(function, *args)()


def submit(function: Callable[..., Result], *args: Any) -> Callable[[], Result]:
    """Start `function(*args)` in the GX worker (else run it here, now); returns what waits for its result."""
    if _worker is None:
        result = function(*args)
        return lambda: result
    return _worker.submit(_in_worker, function, *_sent(args)).result


def defer(finish: Callable[[], None]) -> None:
    """Run `finish` (which waits for a `submit`ted result) at `finish_deferred`; at once when no worker runs."""
    if _worker is None:
        finish()
    else:
        _deferred.append(finish)


def finish_deferred() -> None:
    """Run what was deferred, in order; the first that fails stops the others."""
    while _deferred:
        _deferred.pop(0)()


def _sent(args: tuple[Any, ...]) -> list[Any]:
    return [next((_Inherited(i) for i, obj in enumerate(_inherited) if arg is obj), arg) for arg in args]


def _in_worker(function: Callable[..., Result], *args: Any) -> Result:
    return function(*(_inherited[arg.index] if isinstance(arg, _Inherited) else arg for arg in args))


def import_gx() -> None:
    """Import great-expectations with its analytics off (no network)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations  # noqa: F401


def tied_to_parent(parent: int) -> None:
    """The main process decides what a SIGINT or SIGTERM ends, and stops the worker. If it is
    killed outright, the worker dies with it (Linux): forked, the worker shares the outputs'
    lock (`artifacts.RunLock`, a flock), which would otherwise outlive the run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _stop(worker: ProcessPoolExecutor) -> None:
    """End the worker at once (it may be importing or checking): the run is failing or stopped."""
    processes = list((getattr(worker, "_processes", None) or {}).values())
    worker.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
        process.join()
