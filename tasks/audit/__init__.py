"""The tamper-evident audit trail (issue 7): verifying the ops store's hash chain.

Exports resolve lazily, so the slice workers (`python -m tasks.audit.chunk_walk`) start without
importing SQLAlchemy and the store models.
"""

from typing import Any

__all__ = ["ChainBreak", "ChainReport", "EntryRef", "verify_chain"]


def __getattr__(name: str) -> Any:
    if name in ("ChainBreak", "EntryRef"):
        from tasks.audit import chain

        return getattr(chain, name)
    if name in ("ChainReport", "verify_chain"):
        from tasks.audit import verify

        return getattr(verify, name)
    raise AttributeError(f"module 'tasks.audit' has no attribute {name!r}")
