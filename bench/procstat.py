"""CPU time and resident memory of a server's whole process tree, read from /proc.

Not a script: ``bench.load`` uses it. CPU is utime + stime + cutime + cstime of every live process in
the tree (the root and all its descendants). A worker that exits and is reaped hands its time to its
parent's cutime/cstime, so the sum neither loses nor double-counts it: the difference of two readings
is the CPU the tree spent in between, whatever the machine's other load did to wall-clock time.
"""

from __future__ import annotations

import os
import threading

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (0.0 when it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
    return sum(int(v) for v in fields[11:15]) / TICK


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(root: int) -> float:
    return sum(cpu_seconds(pid) for pid in tree(root))


def pids_cpu_seconds(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in pids}


class Watch:
    """CPU spent by a process tree between ``start()`` and ``stop()``, and the largest resident set
    each process of it reached, sampled every ``interval`` seconds."""

    def __init__(self, root: int, interval: float = 0.2):
        self.root = root
        self.interval = interval
        self.max_rss: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu0 = 0.0
        self.cpu = 0.0

    def _sample(self) -> None:
        for pid in tree(self.root):
            self.max_rss[pid] = max(self.max_rss.get(pid, 0), rss_bytes(pid))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> Watch:
        self._sample()
        self._cpu0 = tree_cpu_seconds(self.root)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Watch:
        self.cpu = tree_cpu_seconds(self.root) - self._cpu0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        return self

    def worker_rss_max(self) -> int:
        """The largest resident set of a worker: a child of the root, or the root when it works alone."""
        workers = {pid: rss for pid, rss in self.max_rss.items() if pid != self.root}
        return max(workers.values()) if workers else self.max_rss.get(self.root, 0)

    def worker_count(self) -> int:
        return max(1, len([pid for pid in self.max_rss if pid != self.root]))
