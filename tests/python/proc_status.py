"""/proc/self/status for the memory workers (memory_check.py,
stage3_memory_check.py): a field in bytes, and resetting the peak."""


def status(field):
    """A /proc/self/status field in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak():
    """VmHWM back to the current RSS (Linux's clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
