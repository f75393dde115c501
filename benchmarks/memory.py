"""Peak resident memory of this process (Linux), resettable so a phase can be measured alone."""

from __future__ import annotations


def reset_peak_memory() -> None:
    """Start a new peak resident set size for this process (VmHWM)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def peak_memory_mb() -> float:
    """Peak resident set size of this process since start or the last reset, in MB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def load_average() -> float:
    """The 1-minute load average (the machine is shared: report it next to timings)."""
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])
