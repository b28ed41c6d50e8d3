"""Object storage: an S3 bucket in production, a SQLite file by default."""

from __future__ import annotations

from argus.store.base import ObjectStore
from argus.store.base import PreconditionFailed
from argus.store.base import StoredObject
from argus.store.base import StoreError
from argus.store.base import encode_json

__all__ = [
    "ObjectStore",
    "PreconditionFailed",
    "StoreError",
    "StoredObject",
    "encode_json",
    "open_store",
]


def open_store(url: str, timeout_seconds: float = 5.0) -> ObjectStore:
    """Open the store named by ``sqlite:///ABSOLUTE/PATH`` or ``s3://BUCKET``."""
    if url.startswith("sqlite:///"):
        from argus.store.sqlite import SQLiteStore

        return SQLiteStore("/" + url.removeprefix("sqlite:///").lstrip("/"))
    if url.startswith("s3://"):
        from argus.store.s3 import S3Store

        return S3Store(url.removeprefix("s3://").strip("/"), timeout_seconds)
    raise ValueError(f"unsupported store URL {url!r}")
