"""The production object store: one S3 bucket through boto3."""

from __future__ import annotations

import boto3
import botocore.config
import botocore.exceptions

from argus.store.base import PreconditionFailed
from argus.store.base import StoredObject
from argus.store.base import StoreError

# S3 returns 412 when a condition fails, and 409 when a concurrent conditional
# write to the same key won the race.
_PRECONDITION_STATUSES = {409, 412}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    """Objects in an S3 bucket, with S3's conditional writes.

    Credentials, region and endpoint come from boto3's own configuration
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
    ``AWS_ENDPOINT_URL``). The version of an object is its ETag.
    """

    def __init__(self, bucket: str, timeout_seconds: float = 5.0) -> None:
        self.bucket = bucket
        config = botocore.config.Config(
            connect_timeout=min(timeout_seconds, 2.0),
            read_timeout=timeout_seconds,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,
        )
        self._client = boto3.session.Session().client("s3", config=config)

    def get(self, key: str) -> StoredObject | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"].read()
        except botocore.exceptions.ClientError as error:
            if _error_code(error) in _MISSING_CODES:
                return None
            raise _store_error("read", key, error) from error
        except botocore.exceptions.BotoCoreError as error:
            raise _store_error("read", key, error) from error
        return StoredObject(body, response["ETag"])

    def put(
        self,
        key: str,
        body: bytes,
        *,
        if_absent: bool = False,
        if_version: str | None = None,
    ) -> str:
        arguments = {"Bucket": self.bucket, "Key": key, "Body": body}
        if if_absent:
            arguments["IfNoneMatch"] = "*"
        if if_version is not None:
            arguments["IfMatch"] = if_version
        try:
            response = self._client.put_object(**arguments)
        except botocore.exceptions.ClientError as error:
            if if_version is not None and _error_code(error) in _MISSING_CODES:
                raise PreconditionFailed(f"{key!r} no longer exists") from error
            if _status(error) in _PRECONDITION_STATUSES:
                message = f"{key!r} was changed by another writer"
                raise PreconditionFailed(message) from None
            raise _store_error("write", key, error) from error
        except botocore.exceptions.BotoCoreError as error:
            raise _store_error("write", key, error) from error
        return response["ETag"]

    def delete(self, key: str, *, if_version: str | None = None) -> None:
        arguments = {"Bucket": self.bucket, "Key": key}
        if if_version is not None:
            arguments["IfMatch"] = if_version
        try:
            self._client.delete_object(**arguments)
        except botocore.exceptions.ClientError as error:
            if _error_code(error) in _MISSING_CODES:
                if if_version is not None:
                    raise PreconditionFailed(f"{key!r} no longer exists") from error
                return
            if _status(error) in _PRECONDITION_STATUSES:
                message = f"{key!r} was changed by another writer"
                raise PreconditionFailed(message) from None
            raise _store_error("delete", key, error) from error
        except botocore.exceptions.BotoCoreError as error:
            raise _store_error("delete", key, error) from error

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except (
            botocore.exceptions.ClientError,
            botocore.exceptions.BotoCoreError,
        ) as error:
            raise _store_error("listing", prefix, error) from error
        return sorted(keys)

    def check(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (
            botocore.exceptions.ClientError,
            botocore.exceptions.BotoCoreError,
        ) as error:
            raise _store_error("check", self.bucket, error) from error

    def __repr__(self) -> str:
        return f"S3Store({self.bucket!r})"


def _error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: botocore.exceptions.ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _store_error(action: str, key: str, error: Exception) -> StoreError:
    return StoreError(f"S3 {action} of {key!r} failed: {error}")
