"""A child process we own: started with its output in a log file, stopped by PID.

Why a class of our own rather than bare ``subprocess.Popen``: the embedded
broker and redis-server must *always* be stopped (tests, the demo, Ctrl-C), a
paused (SIGSTOP) child ignores SIGTERM until it is continued, and a failed
start is only diagnosable with the child's own output. This module owns those
details so :mod:`stream.embedded` can stay about services, not signals.

Children are started in their own session, so a Ctrl-C in the terminal reaches
only our process, which then stops them in order. An ``atexit`` hook stops any
child still running when the interpreter exits normally; nothing can help if
the parent is killed with SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = [
    "EmbeddedServicesError",
    "ManagedProcess",
    "free_loopback_port",
    "stop_popen",
    "wait_for_http",
    "wait_for_port",
]

LOOPBACK = "127.0.0.1"


class EmbeddedServicesError(RuntimeError):
    """An embedded or external service could not be started, reached or controlled.

    ``retriable`` is True when trying again may help (a port race, a slow start).
    """

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


# Children still running, stopped at interpreter exit if their owner forgot.
_LIVE: set[ManagedProcess] = set()


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The port is released before the child binds it, so another process can
    take it in between; callers retry a start that fails for that reason.

    It is picked *outside* the kernel's ephemeral range (where ``bind(0)``
    would pick it). A client polling a port that is not listening yet can
    otherwise be given that very port as its own source port and connect to
    itself (TCP simultaneous open): it then reads its own request back as the
    reply, and a readiness check passes before the server exists.
    """
    low, high = _ephemeral_range()
    pool = [p for p in range(_LOWEST_PORT, 65536) if not low <= p <= high]
    for _ in range(100 if pool else 0):
        port = pool[secrets.randbelow(len(pool))]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # the range covers every port
        sock.bind((LOOPBACK, 0))
        any_port: int = sock.getsockname()[1]
        return any_port


_LOWEST_PORT = 10_000  # below this are registered services a developer may run
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def wait_for_port(port: int, *, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Return True as soon as 127.0.0.1:``port`` accepts a TCP connection.

    Gives up early (False) once ``alive()`` says the process that should listen has exited.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
        time.sleep(0.02)
    return False


def wait_for_http(url: str, *, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Return True as soon as ``url`` (on 127.0.0.1) answers 200; False on timeout or once ``alive()`` is False."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 - our own loopback URL
            if r.status == 200:
                return True
        time.sleep(0.2)
    return False


def stop_popen(proc: subprocess.Popen[bytes], *, timeout: float = 15.0) -> int | None:
    """SIGTERM a child we started, SIGKILL it if it outlives ``timeout``; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class ManagedProcess:
    """One child process, its log file and its lifecycle.

    Parameters
    ----------
    name
        Short label used in messages ("tansu", "redis").
    argv
        Command line; ``argv[0]`` is an absolute path to the executable.
    log_path
        File receiving the child's stdout and stderr (appended across restarts).
    cwd
        Working directory, a temporary one, so nothing lands in the repository.
    env
        Full environment of the child.
    """

    def __init__(
        self,
        *,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        cwd: Path,
        env: Mapping[str, str],
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env)
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._paused = False
        self._stopping = False

    def __repr__(self) -> str:
        return f"ManagedProcess(name={self.name!r}, pid={self.pid}, alive={self.alive})"

    @property
    def pid(self) -> int | None:
        """PID of the current child, or None if it was never started or has been stopped."""
        return self._popen.pid if self._popen is not None and self._popen.returncode is None else None

    @property
    def alive(self) -> bool:
        """True while the child runs (a paused child is alive)."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def crashed(self) -> bool:
        """True if the child exited on its own (not through :meth:`stop`)."""
        return self._popen is not None and not self._stopping and self._popen.poll() is not None

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._paused and self.alive

    def start(self) -> None:
        """Spawn the child; its output goes to :attr:`log_path`."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(f"--- starting {self.name}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        try:
            self._popen = subprocess.Popen(  # noqa: S603 - argv is built by us, never from a shell string
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        except OSError:
            self._close_log()
            raise
        self._paused = False
        self._stopping = False
        _LIVE.add(self)

    def pause(self) -> None:
        """Freeze the child with SIGSTOP: its sockets stay open but nothing answers."""
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Continue a child frozen by :meth:`pause`."""
        self._signal(signal.SIGCONT)
        self._paused = False

    def stop(self, *, timeout: float = 5.0) -> int | None:
        """Stop the child: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Safe to call any number of times and on a child that already exited.
        Always closes the log file. Returns the exit code (None if never started).
        """
        popen = self._popen
        self._stopping = True
        _LIVE.discard(self)
        try:
            if popen is None:
                return None
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
                # A stopped process keeps SIGTERM pending until it is continued.
                with contextlib.suppress(ProcessLookupError):
                    popen.send_signal(signal.SIGCONT)
                try:
                    popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(timeout=timeout)
            self._paused = False
            return popen.returncode
        finally:
            self._close_log()

    def log_tail(self, max_bytes: int = 4000) -> str:
        """Last ``max_bytes`` of the child's output, for error messages."""
        if self._log is not None:
            with contextlib.suppress(ValueError, OSError):
                self._log.flush()
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - max_bytes))
                return fh.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"<cannot read {self.log_path}: {exc}>"

    def _signal(self, signum: int) -> None:
        if self._popen is None or self._popen.poll() is not None:
            raise RuntimeError(f"{self.name} is not running")
        self._popen.send_signal(signum)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.stop(timeout=2.0)
