"""CPU time from /proc for the benchmarks: a process tree, PostgreSQL's backends of a database.

Linux only; where /proc cannot be read (PostgreSQL on another host) the figures are None.
Times are user + system CPU seconds (utime + stime of /proc/<pid>/stat).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process (all its threads), or None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5)


def parents() -> dict[int, int]:
    """pid -> parent pid of every process now."""
    found: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                found[int(entry.name)] = int(fields[1])
    return found


def tree(root: int) -> list[int]:
    """`root` and all its descendants now."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def backends_of(postmaster: int, database: str) -> list[int]:
    """PostgreSQL backends serving `database`: the postmaster's children whose process title
    (`postgres: [cluster:] user database host(port) state`) names it."""
    found = []
    for pid, ppid in parents().items():
        if ppid != postmaster:
            continue
        try:
            title = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if f" {database} " in title:
            found.append(pid)
    return found


def postmaster_of(backend: int) -> int | None:
    """The postmaster of a backend (its parent), if that process is visible here."""
    fields = _stat_fields(backend)
    return int(fields[1]) if fields is not None else None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [float(x) for x in (PROC / "loadavg").read_text().split()[:3]]


def busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (user, nice, system, irq, softirq,
    steal), from /proc/stat: the whole machine, other people's work included."""
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


class CpuWatch:
    """CPU seconds used by a changing set of processes during a window.

    `select()` names the processes to count; it is asked at start, every `every` seconds
    in a background thread and at stop, so that processes born during the window count
    from zero and processes that end during it count up to their last sample (what they
    used after that sample, at most `every` seconds' worth, is lost). Processes present at
    start count from their value then."""

    def __init__(self, select: Callable[[], Iterable[int]], every: float = 0.2) -> None:
        self.select = select
        self.every = every
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self, *, starting: bool = False) -> None:
        for pid in self.select():
            value = cpu_seconds(pid)
            if value is None:
                continue
            if pid not in self.first:
                self.first[pid] = value if starting else 0.0
            self.last[pid] = value

    def start(self) -> CpuWatch:
        self._sample(starting=True)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def stop(self) -> float:
        """Stop watching; the CPU seconds used since start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)

    @property
    def processes(self) -> int:
        return len(self.last)
