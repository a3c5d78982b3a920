"""The host memory this process may still take: what is available, within its limits.

A machine's total memory says little about what one process can allocate: other
processes hold some, an address-space limit (``ulimit -v``, ``RLIMIT_AS``) or a
container's cgroup may allow far less. :func:`host_memory` gives the least of what
each of them leaves, and names it, for the size checks' messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

__all__ = ["Memory", "host_memory"]

#: Where Linux mounts the cgroup file systems.
_CGROUP_ROOT = Path("/sys/fs/cgroup")
#: A cgroup v1 limit at or above this is "no limit" (the kernel writes about 2**63).
_UNLIMITED = 2**62


class Memory(NamedTuple):
    """Bytes of memory that a computation may take, and what bounds them.

    Attributes
    ----------
    bytes : int
    bound : str
        What sets the figure, for a message: ``"the host's available memory"``.
    """

    bytes: int
    bound: str


def host_memory() -> Memory | None:
    """The host memory this process may still take, and what bounds it.

    The least of: the memory the kernel reports available (``MemAvailable``, which
    counts reclaimable caches); the address-space limit (``RLIMIT_AS``) less what
    the process maps already; the memory limit of its cgroup (v2 or v1) less what
    the cgroup uses, its inactive page cache not counted. Where ``/proc`` cannot
    be read (not Linux), the host's total memory. None where nothing can be read.
    """
    found = [m for m in (_available(), _address_space(), _cgroup()) if m is not None]
    return min(found, key=lambda m: m.bytes) if found else None


def _available() -> Memory | None:
    fields = _fields(Path("/proc/meminfo"))
    if "MemAvailable" in fields:
        return Memory(fields["MemAvailable"] * 1024, "the host's available memory")
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return Memory(total, "the host's memory")


def _address_space() -> Memory | None:
    try:
        import resource
    except ImportError:  # not a Unix
        return None
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    mapped = _fields(Path("/proc/self/status")).get("VmSize", 0) * 1024
    return Memory(
        max(limit - mapped, 0),
        "this process's address-space limit, ulimit -v, less what it maps already",
    )


def _cgroup() -> Memory | None:
    """What the process's memory cgroup leaves, v2 or v1; None where it sets no limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: limit memory.max, use memory.current
            files = ("memory.max", "memory.current", "inactive_file")
            found = _cgroup_left(_CGROUP_ROOT, path, *files)
        elif "memory" in controllers.split(","):  # v1
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
            found = _cgroup_left(_CGROUP_ROOT / "memory", path, *files)
        else:
            continue
        if found is not None:
            return found
    return None


def _cgroup_left(root: Path, path: str, limit_file: str, usage_file: str,
                 inactive: str) -> Memory | None:  # fmt: skip
    """What a cgroup's limit leaves: its own directory under ``root``, else ``root``
    itself (a container sees its own cgroup there)."""
    for directory in (root / path.lstrip("/"), root):
        try:
            limit_text = (directory / limit_file).read_text().strip()
            usage = int((directory / usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or int(limit_text) >= _UNLIMITED:
            return None
        cache = _fields(directory / "memory.stat", separator=" ").get(inactive, 0)
        return Memory(
            max(int(limit_text) - max(usage - cache, 0), 0),
            "the memory limit of this process's cgroup (its container) less what it uses",
        )
    return None


def _fields(path: Path, separator: str = ":") -> dict[str, int]:
    """The ``name: number [kB]`` lines of a ``/proc`` or cgroup file, by name (empty if
    it cannot be read)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        name, _, value = line.partition(separator)
        number = value.split()[0] if value.split() else ""
        if number.isdigit():
            found[name.strip()] = int(number)
    return found
