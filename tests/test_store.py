"""Contract tests of the object stores, run against SQLite and against moto S3."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from argus.store import ObjectStore
from argus.store import PreconditionFailed
from argus.store import StoreError
from argus.store import open_store

THREADS = 8
INCREMENTS_PER_THREAD = 25
PROCESSES = 4
INCREMENTS_PER_PROCESS = 50


@pytest.fixture
def store(store_url: str) -> ObjectStore:
    return open_store(store_url)


def increment(
    store: ObjectStore, key: str, times: int, pause_seconds: float = 0.0
) -> int:
    """Add 1 to the integer stored at ``key`` ``times`` times; return the retries.

    ``pause_seconds`` between the read and the write widens the race window.
    """
    retries = 0
    for _ in range(times):
        while True:
            current = store.get(key)
            next_value = int(current.body) + 1
            if pause_seconds:
                time.sleep(pause_seconds)
            try:
                store.put(key, str(next_value).encode(), if_version=current.version)
                break
            except PreconditionFailed:
                retries += 1
    return retries


def increment_in_process(url: str, key: str, times: int, start, retries) -> None:
    store = open_store(url)
    start.wait(60)
    retries.put(increment(store, key, times, pause_seconds=0.001))


def test_get_missing_returns_none(store: ObjectStore) -> None:
    assert store.get("missing") is None


def test_put_get_round_trip(store: ObjectStore) -> None:
    body = "état 日本 😀".encode() + bytes(range(256))

    version = store.put("runs/1", body)
    stored = store.get("runs/1")

    assert stored is not None
    assert stored.body == body
    assert stored.version == version


def test_stored_object_json(store: ObjectStore) -> None:
    store.put("doc", b'{"name": "Melino\xc3\xab"}')

    assert store.get("doc").json() == {"name": "Melinoë"}


def test_version_changes_every_write(store: ObjectStore) -> None:
    versions = [store.put("key", f"body {index}".encode()) for index in range(5)]

    assert len(set(versions)) == len(versions)
    assert store.get("key").version == versions[-1]


def test_if_absent_creates_new_key(store: ObjectStore) -> None:
    version = store.put("key", b"first", if_absent=True)

    assert store.get("key").body == b"first"
    assert store.get("key").version == version


def test_if_absent_existing_key_raises(store: ObjectStore) -> None:
    version = store.put("key", b"first")

    with pytest.raises(PreconditionFailed):
        store.put("key", b"second", if_absent=True)

    assert store.get("key").body == b"first"
    assert store.get("key").version == version


def test_if_version_current_replaces(store: ObjectStore) -> None:
    version = store.put("key", b"first")

    new_version = store.put("key", b"second", if_version=version)

    assert store.get("key").body == b"second"
    assert store.get("key").version == new_version


def test_if_version_stale_raises(store: ObjectStore) -> None:
    stale = store.put("key", b"first")
    current = store.put("key", b"second")

    with pytest.raises(PreconditionFailed):
        store.put("key", b"third", if_version=stale)

    assert store.get("key").body == b"second"
    assert store.get("key").version == current


def test_if_version_missing_key_raises(store: ObjectStore) -> None:
    version = store.put("key", b"first")
    store.delete("key")

    with pytest.raises(PreconditionFailed):
        store.put("key", b"second", if_version=version)

    assert store.get("key") is None


def test_delete_removes_object(store: ObjectStore) -> None:
    store.put("key", b"body")

    store.delete("key")

    assert store.get("key") is None


def test_delete_current_version(store: ObjectStore) -> None:
    version = store.put("key", b"body")

    store.delete("key", if_version=version)

    assert store.get("key") is None


def test_delete_stale_version_raises(store: ObjectStore) -> None:
    stale = store.put("key", b"first")
    current = store.put("key", b"second")

    with pytest.raises(PreconditionFailed):
        store.delete("key", if_version=stale)

    assert store.get("key").body == b"second"
    assert store.get("key").version == current


def test_delete_missing_key_ok(store: ObjectStore) -> None:
    store.delete("missing")

    assert store.get("missing") is None


def test_delete_missing_key_with_version_raises(store: ObjectStore) -> None:
    version = store.put("key", b"body")
    store.delete("key")

    with pytest.raises(PreconditionFailed):
        store.delete("key", if_version=version)


def test_list_keys_sorted_by_prefix(store: ObjectStore) -> None:
    for key in ["links/b", "links/a/2", "linksx", "links/a/1", "other/links/c"]:
        store.put(key, b"x")

    assert store.list_keys("links/") == ["links/a/1", "links/a/2", "links/b"]
    assert store.list_keys("links/a/") == ["links/a/1", "links/a/2"]
    assert store.list_keys("links/a/1") == ["links/a/1"]
    assert store.list_keys("nothing/") == []


def test_list_keys_empty_prefix(store: ObjectStore) -> None:
    keys = ["b", "a", "c/d"]
    for key in keys:
        store.put(key, b"x")

    assert store.list_keys("") == sorted(keys)


def test_list_keys_wildcard_characters(store: ObjectStore) -> None:
    keys = ["a%b/1", "a%b/2", "axb/1", "a_b/1", "aab/1", "a%", "a_", "ab", "a"]
    for key in keys:
        store.put(key, b"x")

    assert store.list_keys("a%") == ["a%", "a%b/1", "a%b/2"]
    assert store.list_keys("a%b/") == ["a%b/1", "a%b/2"]
    assert store.list_keys("a_") == ["a_", "a_b/1"]
    assert store.list_keys("a_b/") == ["a_b/1"]


def test_list_keys_non_ascii(store: ObjectStore) -> None:
    keys = [
        "runs/é",
        "runs/日本",
        "runs/😀",
        "runs/\U0010ffff",
        "runs/\U0010ffffz",
        "runs\U0010ffff",
        "runt",
    ]
    for key in keys:
        store.put(key, b"x")

    expected = ["runs/é", "runs/日本", "runs/😀", "runs/\U0010ffff", "runs/\U0010ffffz"]
    assert store.list_keys("runs/") == expected
    assert store.list_keys("runs/\U0010ffff") == ["runs/\U0010ffff", "runs/\U0010ffffz"]
    assert store.list_keys("runs") == [*expected, "runs\U0010ffff"]


def test_check_passes(store: ObjectStore) -> None:
    store.check()


def test_s3_check_missing_bucket(moto_url: str) -> None:
    store = open_store(f"s3://argus-missing-{uuid.uuid4().hex[:12]}")

    with pytest.raises(StoreError):
        store.check()


def test_s3_get_missing_bucket(moto_url: str) -> None:
    store = open_store(f"s3://argus-missing-{uuid.uuid4().hex[:12]}")

    with pytest.raises(StoreError) as raised:
        store.get("key")

    assert not isinstance(raised.value, PreconditionFailed)


def test_open_store_unknown_scheme() -> None:
    with pytest.raises(ValueError):
        open_store("postgres://localhost/argus")


def test_open_store_sqlite_path(tmp_path) -> None:
    path = tmp_path / "nested" / "store.sqlite3"

    store = open_store(f"sqlite:///{path}")
    store.put("key", b"body")

    assert path.exists()
    assert open_store(f"sqlite:///{path}").get("key").body == b"body"


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "s3",
            # NOTE: moto 5.2.5 is not atomic here. S3Response.put_object in
            # moto/s3/responses.py compares If-Match with the current ETag and
            # writes the object later, without a lock, while moto_server serves
            # requests on several threads. Two writers can therefore both
            # succeed with the same version: 3 of 35 local runs ended at 199.
            marks=pytest.mark.xfail(
                reason="moto checks If-Match and writes without a lock",
                strict=False,
            ),
        ),
    ],
)
def test_concurrent_increments_exact(
    backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = request.getfixturevalue("sqlite_url")
    else:
        url = "s3://" + request.getfixturevalue("s3_bucket")
    store = open_store(url)
    store.put("counter", b"0")
    start = threading.Barrier(THREADS)

    def run() -> int:
        start.wait()
        return increment(store, "counter", INCREMENTS_PER_THREAD, pause_seconds=0.001)

    with ThreadPoolExecutor(THREADS) as executor:
        futures = [executor.submit(run) for _ in range(THREADS)]
        retries = [future.result() for future in futures]

    assert int(store.get("counter").body) == THREADS * INCREMENTS_PER_THREAD
    # Without contention the test would not exercise the conditional writes.
    assert sum(retries) > 0


def test_sqlite_processes_lose_no_update(sqlite_url: str) -> None:
    open_store(sqlite_url).put("counter", b"0")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    retries = context.Queue()
    processes = [
        context.Process(
            target=increment_in_process,
            args=(sqlite_url, "counter", INCREMENTS_PER_PROCESS, start, retries),
        )
        for _ in range(PROCESSES)
    ]

    for process in processes:
        process.start()
    retry_counts = [retries.get(timeout=60) for _ in range(PROCESSES)]
    for process in processes:
        process.join(60)

    assert [process.exitcode for process in processes] == [0] * PROCESSES
    counter = open_store(sqlite_url).get("counter")
    assert int(counter.body) == PROCESSES * INCREMENTS_PER_PROCESS
    # Without contention the test would not exercise the conditional writes.
    assert sum(retry_counts) > 0


def test_sqlite_text_body_is_read(tmp_path):
    import sqlite3

    from argus.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "store.sqlite3")
    with sqlite3.connect(tmp_path / "store.sqlite3") as connection:
        connection.execute(
            "INSERT INTO objects (key, body, version) VALUES ('k', '{\"a\": 1}', 'v1')"
        )

    stored = store.get("k")

    assert stored.body == b'{"a": 1}'
    assert stored.version == "v1"
