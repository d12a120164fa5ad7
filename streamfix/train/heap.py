"""Keep a training process's freed tensors in its heap (glibc's allocator).

A training step allocates and frees the same few hundred tensors every iteration, many of
them 0.1–30 MB (a batch of 8 crops of 160×160 at 16–64 channels). glibc hands blocks above its
*mmap threshold* (128 KiB at start) straight back to the kernel when they are freed, so each
step maps them anew and the kernel zeroes and faults in every page again. Raising the threshold
to glibc's largest (32 MiB on 64-bit) and never trimming the heap keeps those blocks for reuse.
The arithmetic is untouched — the weights a seed trains are bit-identical — only the time moves:
BacklitNet's recipe on one torch thread, the first 100 iterations, 1.28 it/s before and 1.42–1.47
after in single runs on a noisy host (``engines/backlitnet.toml``, ``speed``). The cost is that the
process keeps its peak heap until it exits, which a training run reaches within its first steps
anyway (peak RSS 1.33 → 1.37 GB there).

This is process-wide and one-way, so the training commands call it, not the library functions
(a caller embedding :func:`streamfix.train.backlitnet.train_backlitnet` keeps its allocator).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: glibc's upper bound for the mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX: 4 MiB · sizeof(long))
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
#: a trim threshold no heap top reaches (mallopt takes an int)
NEVER_TRIM = 2**31 - 1


def keep_heap() -> bool:
    """Raise glibc's mmap threshold to its maximum and stop heap trimming.

    Returns:
        True when both settings were applied; False where there is no glibc (macOS, Windows,
        musl) or it refused them — the process then runs as before.
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
