"""A debugging aid, off by default: what a worker's memory is made of, dumped on a signal.

With ``SMARTTRIP_MEMORY_PROBE=DIR`` set, a process that calls :func:`install`
starts :mod:`tracemalloc` (``SMARTTRIP_MEMORY_PROBE_FRAMES`` frames a trace,
default 4; 0: no tracemalloc, only the process's and the allocator's figures) and, on each ``SIGRTMIN+3`` (:data:`PROBE_SIGNAL`; SIGUSR1/2 belong
to Faust's worker), a helper thread writes ``DIR/<name>-<pid>-<n>.txt``: RSS
and its anonymous part (``/proc/self/smaps_rollup``), glibc's heap figures
(``mallinfo2``: bytes in use, bytes free inside the heap — fragmentation —
and in mmapped chunks), the bytes tracemalloc traces, live objects by type
and the top allocation sites; plus ``DIR/<name>-<pid>-<n>.tracemalloc``, the
snapshot itself. ``SMARTTRIP_MEMORY_PROBE_TRIM=1`` also calls
``malloc_trim(0)`` after each dump and records the RSS it gave back.

Compare two snapshots (e.g. end of warm-up and end of a soak, which sends the
signal at both moments when the variable is set, :mod:`bench.soak`)::

    python -m monitoring.memory_probe DIR/scoring-123-1.tracemalloc DIR/scoring-123-2.tracemalloc

tracemalloc costs CPU on every allocation (the loop runs slower while it is
on) and memory for the traces: figures taken with the probe on are for
finding what grows, not for the soak's targets.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import os
import signal
import sys
import threading
import time
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ENV", "PROBE_SIGNAL", "MemoryProbe", "heap_info", "install", "top_diff"]

ENV = "SMARTTRIP_MEMORY_PROBE"
#: The signal that asks for a dump (real-time signals are unused by Faust, mode and aiohttp).
PROBE_SIGNAL = signal.SIGRTMIN + 3


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")
    ]  # fmt: skip


def heap_info() -> dict[str, int]:
    """glibc's heap figures in bytes (``mallinfo2``); empty where glibc or the call is missing.

    >>> info = heap_info()
    >>> not info or info["in_use"] > 0
    True
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    fn.restype = _Mallinfo2
    m = fn()
    return {"heap": m.arena, "in_use": m.uordblks, "free_in_heap": m.fordblks, "mmapped": m.hblkhd}


def _rollup() -> dict[str, int]:
    """RSS and its parts from ``/proc/self/smaps_rollup``, in bytes."""
    out: dict[str, int] = {}
    try:
        text = Path("/proc/self/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Anonymous", "Private_Dirty", "Shared_Clean") and rest.strip().endswith("kB"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def _trim() -> bool:
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


class MemoryProbe:
    """Writes dumps to ``directory`` (see the module docstring); :meth:`dump` is safe to call directly."""

    def __init__(self, directory: Path, name: str, *, top: int = 30, trim: bool = False) -> None:
        self.directory = directory
        self.name = name
        self.top = top
        self.trim = trim
        self.dumps = 0
        self._wanted = threading.Event()
        directory.mkdir(parents=True, exist_ok=True)

    def dump(self) -> Path:
        """Write one dump; returns the path of its text part."""
        self.dumps += 1
        stem = self.directory / f"{self.name}-{os.getpid()}-{self.dumps}"
        lines = [f"{self.name} pid {os.getpid()} dump {self.dumps} at {time.time():.1f}"]
        lines += [f"{k}: {v / 2**20:.1f} MiB" for k, v in _rollup().items()]
        lines += [f"malloc {k}: {v / 2**20:.1f} MiB" for k, v in heap_info().items()]
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            lines.append(f"traced: {current / 2**20:.1f} MiB (peak {peak / 2**20:.1f})")
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            snapshot.dump(str(stem.with_suffix(".tracemalloc")))
            lines.append("top allocation sites:")
            lines += [f"  {s}" for s in snapshot.statistics("lineno")[: self.top]]
            del snapshot
        counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        lines.append(
            "gc-tracked objects by type: " + ", ".join(f"{t} {n}" for t, n in counts.most_common(15))
        )
        if self.trim:
            before = _rollup().get("Rss", 0)
            _trim()
            lines.append(f"malloc_trim(0) gave back {(before - _rollup().get('Rss', 0)) / 2**20:.1f} MiB")
        path = stem.with_suffix(".txt")
        path.write_text("\n".join(lines) + "\n")
        return path

    def _serve(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                self.dump()
            except Exception as exc:  # a debugging aid never takes the worker down
                print(f"memory probe: dump failed: {exc!r}", file=sys.stderr)

    def start(self) -> None:
        """Dump in a daemon thread on each :data:`PROBE_SIGNAL`."""
        threading.Thread(target=self._serve, name="memory-probe", daemon=True).start()
        signal.signal(PROBE_SIGNAL, lambda _sig, _frame: self._wanted.set())


def install(name: str, environ: Mapping[str, str] = os.environ) -> MemoryProbe | None:
    """Start the probe if ``SMARTTRIP_MEMORY_PROBE`` names a directory (else do nothing, return None)."""
    directory = environ.get(ENV, "")
    if not directory:
        return None
    raw = environ.get(f"{ENV}_FRAMES", "4")
    if not raw.isdigit():
        raise ValueError(f"{ENV}_FRAMES: must be an integer >= 0, got {raw!r}")
    frames = int(raw)
    if frames:
        tracemalloc.start(frames)
    probe = MemoryProbe(Path(directory), name, trim=environ.get(f"{ENV}_TRIM", "") == "1")
    probe.start()
    return probe


def top_diff(before: Path, after: Path, *, top: int = 30, key: str = "lineno") -> list[str]:
    """The allocation sites that grew most from snapshot ``before`` to ``after`` (dumped by a probe)."""
    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    stats = new.compare_to(old, key)
    out = [str(s) for s in stats[:top]]
    if key == "traceback":
        out = []
        for s in stats[:top]:
            out.append(f"{s.size_diff / 2**20:+.1f} MiB ({s.count_diff:+d} blocks)")
            out += [f"    {line}" for line in s.traceback.format()]
    return out


if __name__ == "__main__":  # pragma: no cover - a command for people
    args = sys.argv[1:]
    grouping = "lineno"
    if args and args[0] == "--traceback":
        grouping, args = "traceback", args[1:]
    if len(args) != 2:
        raise SystemExit(
            "usage: python -m monitoring.memory_probe [--traceback] BEFORE.tracemalloc AFTER.tracemalloc"
        )
    print("\n".join(top_diff(Path(args[0]), Path(args[1]), key=grouping)))
