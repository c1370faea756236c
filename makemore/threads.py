"""CPU threads that fit the machine: the cores this process may run on, less those other work keeps busy."""

import os


def free_cores() -> int:
    """Usable cores (the affinity mask) minus the 1-minute load average, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, round(cores - busy)))


def set_threads(threads: int | None) -> None:
    """torch's CPU threads: `threads`, or the free cores (sample.py, eval.py; training also runs tiny steps on one)."""
    import torch

    torch.set_num_threads(threads or free_cores())
