"""Who holds a lease: an identity per worker, and whether its process still exists.

Every leased job (outbox rows, drafts, the policy clock's lease, mailbox watching) names
its holder ``host:pid:random``. A holder on this host whose process is gone can be taken
over at once; one elsewhere only when its lease lapses.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["holder_is_dead", "worker_identity"]

_OUR_IDENTITIES: set[str] = set()
"""Identities handed out in this process: a lease with our pid but another identity was
left by an earlier process that had the same pid (common after a container restart)."""


def worker_identity() -> str:
    """``host:pid:random``: unique per process, and tells us whether a lease holder may be alive."""
    identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    _OUR_IDENTITIES.add(identity)
    return identity


def holder_is_dead(owner: str | None) -> bool:
    """A lease held by a process on this host that no longer exists can be taken at once."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in _OUR_IDENTITIES
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
