"""CPU threads that fit the machine: the cores this process may run on, less those other work keeps busy now."""

import os
import statistics
import time


def free_cores() -> int:
    """Usable cores (the affinity mask) minus the other tasks running now, at least one (the load average lags)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, round(cores - busy_tasks())))


def busy_tasks(reads: int = 5, gap_s: float = 0.01) -> float:
    """Runnable tasks besides this one: the median of reads of /proc/loadavg (no blips); else the load average."""
    if not os.path.exists("/proc/loadavg"):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    counts = []
    for _ in range(reads):
        with open("/proc/loadavg") as f:  # "0.58 1.00 1.14 2/345 12345": 2 running, this read included
            counts.append(int(f.read().split()[3].split("/")[0]) - 1)
        time.sleep(gap_s)
    return statistics.median(counts)


def set_threads(threads: int | None) -> None:
    """torch's CPU threads: `threads`, or the free cores (sample.py, eval.py; training also runs tiny steps on one)."""
    import torch

    torch.set_num_threads(threads or free_cores())
