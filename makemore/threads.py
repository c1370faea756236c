"""CPU threads that fit the machine: the cores this process may run on, less those other work keeps busy."""

import os


def free_cores() -> int:
    """Usable cores (the affinity mask: a container's or taskset's share) minus the 1-minute load average, at
    least one: a second busy process on a 2-core machine leaves one, and two threads there run ~4x slower."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, round(cores - busy)))
