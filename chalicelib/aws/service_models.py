"""One botocore data loader per process, shared by every botocore session.

pynamodb opens a botocore session per model connection (one per table), and
each new session's loader parses the service descriptions (DynamoDB's model,
endpoints, partitions) from their JSON files again: a second or more of CPU
on a cold Lambda's first call that touches several tables. The parsed models
are read-only (one boto3 session already shares them between its clients),
so sessions may share the loader; a loader is still made per data path
(``AWS_DATA_PATH``), which is what ``create_loader`` is given.
"""

from __future__ import annotations

import functools
import threading

_lock = threading.Lock()
_shared = False


def share_service_models() -> None:
    """Make every botocore session made from now on reuse one loader (idempotent)."""
    global _shared
    with _lock:
        if _shared:
            return
        import botocore.session

        original = botocore.session.create_loader
        if not isinstance(original, functools._lru_cache_wrapper):  # tests may have done it
            botocore.session.create_loader = functools.lru_cache(maxsize=None)(original)
        _shared = True
