"""A bench's life: a temporary folder, everything it starts or creates noted in :class:`Resources`, and
:func:`run_main`, which runs the bench and then always cleans up, also on errors, Ctrl-C and SIGTERM. What every
scenario of a run gets is a :class:`Run` (each bench's context extends it).

SIGTERM unwinds like Ctrl-C (a ``KeyboardInterrupt``) into the cleanup; during the cleanup both signals are
ignored, as it is bounded (STOP_GRACE_S per process, timeouts on every database statement).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from bench import receiver
from bench.harness.databases import Databases
from bench.harness.limits import BenchError, Deadline
from bench.harness.processes import ChildProcess, stop_all
from bench.harness.report import log
from bench.harness.service import webhook_manager_exe


@dataclass
class Resources:
    """Everything the bench started or created, to stop or drop on any exit."""

    processes: list[ChildProcess] = field(default_factory=list)
    receivers: list[BaseProcess] = field(default_factory=list)
    databases: Databases = field(default_factory=Databases)

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            stop_all(self.processes)
        for process in self.receivers:
            with contextlib.suppress(Exception):
                receiver.stop(process)
        with contextlib.suppress(Exception):
            self.databases.drop_all()


@dataclass
class Run:
    """One run of a bench: its global deadline, the ``webhook-manager`` command under test, the temporary folder
    and the resources to clean up."""

    deadline: Deadline
    exe: Path
    workdir: Path
    res: Resources


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_main(prefix: str, keep: bool, timeout: float, bench: Callable[[Run], bool]) -> int:
    """Run ``bench`` with a fresh temporary folder and a deadline ``timeout`` seconds away, then clean up (``keep``:
    keep the folder); the exit status: 0 when it returned True, 1 when it returned False or failed (``FAILED:
    <why>`` on stderr)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    resources = Resources()
    signal.signal(signal.SIGTERM, _interrupt)
    error: str | None = None
    ok = False
    try:
        ok = bench(Run(Deadline(timeout), webhook_manager_exe(), workdir, resources))
    except BenchError as exc:
        error = str(exc)
    except KeyboardInterrupt:
        error = "interrupted"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        resources.cleanup()
        if keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if error:
        print(f"FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    return 0 if ok else 1
