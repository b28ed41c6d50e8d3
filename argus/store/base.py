"""The object-store interface shared by the S3 and SQLite implementations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from typing import Protocol


class StoreError(Exception):
    """The store failed or could not be reached."""


class PreconditionFailed(StoreError):
    """A conditional write found the object created or changed by someone else."""


@dataclass(frozen=True)
class StoredObject:
    """An object's body and the version token that conditional writes compare.

    NOTE: On S3 the version is the ETag, which for a plaintext or SSE-S3
    PutObject is the MD5 of the body (S3 API reference, Object.ETag). Rewriting
    identical bytes there returns the same version again.
    """

    body: bytes
    version: str

    def json(self) -> Any:
        return json.loads(self.body)


class ObjectStore(Protocol):
    """Keyed objects with conditional writes, as S3 offers them.

    ``put(..., if_absent=True)`` creates only, and ``put(..., if_version=v)``
    replaces only while the stored version is still ``v``. Both raise
    PreconditionFailed otherwise, so concurrent writers never lose an update.
    """

    def get(self, key: str) -> StoredObject | None:
        """Return the object, or None when the key does not exist."""

    def put(
        self,
        key: str,
        body: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        """Write the object and return its new version."""

    def delete(self, key: str, *, if_version: str | None = None) -> None:
        """Delete the object; a missing key is not an error."""

    def list_keys(self, prefix: str) -> list[str]:
        """Return every key that starts with ``prefix``, sorted."""

    def check(self) -> None:
        """Raise StoreError unless the store responds."""


def encode_json(value: Any) -> bytes:
    """Serialise a value compactly as UTF-8 JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
