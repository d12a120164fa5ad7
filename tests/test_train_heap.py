"""streamfix.train.heap: the training commands keep freed blocks in the heap (glibc)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from streamfix.train.heap import keep_heap

    FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in FIELDS]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def mapped_and_heap(size):
        # (blocks served by mmap while a block of `size` bytes lives, heap bytes after it is freed)
        before = libc.mallinfo2().hblks
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        mapped = libc.mallinfo2().hblks - before
        libc.free(block)
        return mapped, libc.mallinfo2().arena

    size = 8 * 1024 * 1024
    print(*mapped_and_heap(size), keep_heap(), *mapped_and_heap(size))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator: Linux only")
def test_keep_heap_serves_large_blocks_from_the_heap_and_keeps_them() -> None:
    """Before: an 8 MiB block is its own mapping (returned to the kernel when freed); after
    keep_heap() it comes from the heap, which keeps it once freed."""
    try:
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    except subprocess.CalledProcessError as exc:
        if "mallinfo2" in exc.stderr:
            pytest.skip("no glibc ≥ 2.33 (mallinfo2)")
        raise
    mapped_before, _, applied, mapped_after, heap_after = out.split()
    assert (mapped_before, applied, mapped_after) == ("1", "True", "0")
    assert int(heap_after) >= 8 * 1024 * 1024
