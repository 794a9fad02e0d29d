"""The memory probe (monitoring.memory_probe): off by default; on a signal, a dump of what memory holds."""

from __future__ import annotations

import os
import re
import signal
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitoring import memory_probe


@pytest.fixture
def restore() -> Iterator[None]:
    previous = signal.getsignal(memory_probe.PROBE_SIGNAL)
    yield
    signal.signal(memory_probe.PROBE_SIGNAL, previous)
    tracemalloc.stop()


def test_off_unless_the_variable_names_a_directory() -> None:
    assert memory_probe.install("x", {}) is None
    assert memory_probe.install("x", {memory_probe.ENV: ""}) is None
    assert not tracemalloc.is_tracing()


def test_frames_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SMARTTRIP_MEMORY_PROBE_FRAMES: must be an integer >= 0, got '-1'"):
        memory_probe.install("x", {memory_probe.ENV: str(tmp_path), f"{memory_probe.ENV}_FRAMES": "-1"})


def test_a_signal_dumps_figures_and_a_snapshot_whose_diff_names_what_grew(
    tmp_path: Path, restore: None
) -> None:
    env = {
        memory_probe.ENV: str(tmp_path),
        f"{memory_probe.ENV}_FRAMES": "1",
        f"{memory_probe.ENV}_TRIM": "1",
    }
    probe = memory_probe.install("unit", env)
    assert probe is not None and tracemalloc.is_tracing()
    first = probe.dump()
    grown = [bytearray(1000) for _ in range(2000)]  # ~2 MB from one line
    os.kill(os.getpid(), memory_probe.PROBE_SIGNAL)  # the second dump, written by the probe's thread
    deadline = time.monotonic() + 20
    second = tmp_path / f"unit-{os.getpid()}-2.txt"
    while not second.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = second.read_text()
    assert first.name == f"unit-{os.getpid()}-1.txt"
    for part in (
        "Rss:",
        "traced:",
        "top allocation sites:",
        "gc-tracked objects by type:",
        "malloc_trim(0) gave",
    ):
        assert part in text, part
    diff = memory_probe.top_diff(first.with_suffix(".tracemalloc"), second.with_suffix(".tracemalloc"), top=3)
    grew = re.search(r"test_memory_probe\.py:\d+: size=.*\(\+(\d+) KiB\)", diff[0])
    assert grew is not None and int(grew.group(1)) >= 1900, diff  # the bytearrays' line: ~2 MB
    assert len(grown) == 2000


def test_heap_info_reads_glibc_figures() -> None:
    info = memory_probe.heap_info()
    if info:  # glibc: mallinfo2
        assert info["in_use"] > 0 and info["heap"] >= info["free_in_heap"] >= 0
