"""Measure the service's speed and memory and write docs/benchmarks.md.

Used by ``make bench``. It starts its own Twitch emulator, a SQLite store and
the service under gunicorn on 127.0.0.1, drives them with wrk (installed from
Debian's packages when missing) and measures:

- transformation time of the nominal and the largest realistic run;
- /run_info and /healthz (the ceiling) throughput and latency at 1, 8 and 32
  connections;
- delay from /run_info to the last part accepted by the emulator;
- resident memory of each gunicorn worker after both mapping generations
  were loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from argus.links import LinkRegistry  # noqa: E402
from argus.mapping_cache import MAPPINGS_KEY  # noqa: E402
from argus.mappings import parse_mappings  # noqa: E402
from argus.store import open_store  # noqa: E402
from argus.transform import transform_run_data  # noqa: E402
from argus.transform.serialized import RunSerializer  # noqa: E402
from tests import support  # noqa: E402

DATA_DIR = support.SHARED_DIR / "data"
CASES = json.loads(
    (support.SHARED_DIR / "fixtures" / "run_data_cases.json").read_text()
)
RARITIES = ("Common", "Rare", "Epic", "Heroic")
CONNECTIONS = (1, 8, 32)
WRK_THREADS = 2


def case_named(name: str) -> dict:
    return next(case for case in CASES if case["name"] == name)


def measure_transform(name: str, repeat: int = 7, number: int = 2000) -> dict:
    """Return the median and best time of one transformation, in microseconds."""
    case = case_named(name)
    mappings = parse_mappings((DATA_DIR / case["mappings"]).read_bytes())
    run_data = case["runData"]
    return _time_per_call(
        lambda: transform_run_data(run_data, mappings), repeat, number
    )


def measure_room_exit(repeat: int = 7, number: int = 2000) -> dict:
    """Time the request path's transformation to JSON text for a room exit.

    Each call changes the element counts and the first boon's rarity, as a
    room exit does, and the unchanged sections come from the serializer's
    memo, as they do in the service.
    """
    case = case_named("nominal protocol 2")
    mappings = parse_mappings((DATA_DIR / case["mappings"]).read_bytes())
    runs = [room_exit_variant(case["runData"], number) for number in range(number)]
    serializer = RunSerializer()
    position = iter(range(10**9))

    def serialize() -> None:
        serializer.serialize(runs[next(position) % number], mappings)

    return _time_per_call(serialize, repeat, number)


def room_exit_variant(run_data: dict, number: int) -> dict:
    boons = run_data["boonData"].replace(
        "Common;;", f"{RARITIES[number % len(RARITIES)]};;", 1
    )
    elements = f"Fire:{number % 1000};;Water:{number // 1000 % 1000};;Air:1"
    return dict(run_data, boonData=boons, elementalData=elements)


def _time_per_call(function, repeat: int, number: int) -> dict:
    timings = timeit.repeat(function, repeat=repeat, number=number)
    per_call = [total / number * 1e6 for total in timings]
    return {"median_us": statistics.median(per_call), "best_us": min(per_call)}


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() != 0:
        sys.exit("wrk is missing: install Debian's wrk package and run again")
    print("installing wrk from Debian's packages", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("wrk could not be installed")


def run_wrk(wrk: str, url: str, connections: int, seconds: int, body: Path | None):
    """Run wrk and return requests per second and latency percentiles in ms."""
    command = [
        wrk,
        f"-t{min(WRK_THREADS, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        url,
    ]
    if body is not None:
        command[1:1] = ["-s", str(body)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = {"requests_per_second": float(_find(r"Requests/sec:\s+([\d.]+)", output))}
    for percentile in ("50", "99"):
        value, unit = _find(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)\b", output, 2)
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        result[f"p{percentile}_ms"] = float(value) * scale
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["errors"] = int(non_2xx.group(1)) if non_2xx else 0
    return result


def _find(pattern: str, text: str, groups: int = 1):
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"wrk output has no match for {pattern!r}:\n{text}")
    return match.group(1) if groups == 1 else match.groups()


def wrk_post_script(directory: Path, body: dict) -> Path:
    """Write a wrk script that posts ``body`` with a different run each time.

    Like a room exit, each request changes the element counts and the first
    boon's rarity, so no request is skipped as identical to the one before.
    The body must contain the placeholders FIRECOUNT and RARITY.
    """
    template = json.dumps(body).replace("\\", "\\\\").replace('"', '\\"')
    rarities = ", ".join(f'"{rarity}"' for rarity in RARITIES)
    script = directory / "run_info.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'local template = "{template}"\n'
        f"local rarities = {{{rarities}}}\n"
        "local counter = 0\n"
        "request = function()\n"
        "  counter = counter + 1\n"
        "  local fire = tostring(counter % 1000)\n"
        "  local rarity = rarities[counter % #rarities + 1]\n"
        '  local body = (string.gsub(template, "FIRECOUNT", fire))\n'
        '  body = (string.gsub(body, "RARITY", rarity))\n'
        "  return wrk.format(nil, nil, nil, body)\n"
        "end\n"
    )
    return script


def worker_memory_mb(master_pid: int) -> list[float]:
    """Return the resident memory of each child of the gunicorn master, in MB."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text()
    sizes = []
    for pid in children.split():
        status = Path(f"/proc/{pid}/status").read_text()
        kilobytes = int(_find(r"VmRSS:\s+(\d+) kB", status))
        sizes.append(kilobytes / 1024)
    return sizes


def measure_delivery_delay(service, emulator, links, samples: int) -> dict:
    """Post updates spread over channels and time each until Twitch has them all."""
    case = case_named("nominal protocol 2")
    channels = [str(9_100_000_000 + number) for number in range(20)]
    tokens = {channel: links.link(channel) for channel in channels}
    session = requests.Session()
    delays = []
    for index in range(samples):
        channel = channels[index % len(channels)]
        run_data = dict(case["runData"])
        run_data["elementalData"] = f"Fire:{index % 1000};;Water:1"
        body = {
            "argusProtocolVersion": "2",
            "argusToken": tokens[channel],
            "runData": run_data,
        }
        before = len(_messages(emulator, channel))
        sent_at = time.time()
        answer = session.post(service.url + "/run_info", json=body, timeout=10)
        answer.raise_for_status()
        delays.append(_wait_for_last_part(emulator, channel, before) - sent_at)
        # Stay under the per-channel rate: 20 channels take turns.
        time.sleep(0.1)
    delays_ms = sorted(delay * 1000 for delay in delays)
    return {
        "samples": len(delays_ms),
        "median_ms": statistics.median(delays_ms),
        "p99_ms": delays_ms[min(len(delays_ms) - 1, int(len(delays_ms) * 0.99))],
        "max_ms": delays_ms[-1],
    }


def _messages(emulator, channel: str) -> list[dict]:
    answer = requests.get(
        emulator.url + "/emulator/pubsub", params={"broadcaster_id": channel}, timeout=5
    )
    return answer.json()


def _wait_for_last_part(emulator, channel: str, before: int) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = _messages(emulator, channel)[before:]
        if messages:
            count = int(messages[0]["message"].split("*")[3])
            if len(messages) >= count:
                return messages[count - 1]["received_at"]
        time.sleep(0.005)
    raise RuntimeError(f"no broadcast reached the emulator for channel {channel}")


def write_report(path: Path, results: dict, command: str) -> None:
    cpu = _cpu_model()
    lines = [
        "# Benchmarks",
        "",
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} by `{command}` on "
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        "with the load generator (wrk) on the same machine as the service. "
        f"The service ran under gunicorn with {results['workers']} workers and "
        f"{results['threads']} threads each, rate limits off, a SQLite store and the "
        "Twitch emulator on 127.0.0.1.",
        "",
        "Each /run_info request of the load changes the element counts and the "
        "first boon's rarity of the nominal run, as a room exit does, so no "
        "update is skipped as identical. The store is a local file, which makes "
        "requests CPU-bound: more processes with fewer threads each contend less "
        "for the GIL than the production default of 8 threads, which covers "
        "requests waiting on S3.",
        "",
        "## Transformation",
        "",
        "| run | median | best |",
        "|---|---|---|",
    ]
    for name, timing in results["transform"].items():
        lines.append(
            f"| {name} | {timing['median_us']:.0f} µs | {timing['best_us']:.0f} µs |"
        )
    lines += [
        "",
        f"## HTTP throughput ({results['seconds']} s per row)",
        "",
        "| endpoint | connections | requests/s | p50 | p99 | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["http"]:
        lines.append(
            f"| {row['endpoint']} | {row['connections']} | "
            f"{row['requests_per_second']:.0f} | {row['p50_ms']:.2f} ms | "
            f"{row['p99_ms']:.2f} ms | {row['errors']} |"
        )
    ratio = results["run_info_to_ceiling_at_8"]
    lines += [
        "",
        f"At 8 connections /run_info serves {ratio:.0%} of the requests per second "
        "of the trivial /healthz endpoint under the same settings.",
        "",
        "## Delivery delay",
        "",
        "Time from sending POST /run_info to the emulator accepting the last part "
        "of its broadcast, below the rate limit "
        f"({results['delivery']['samples']} updates over 20 channels):",
        "",
        f"- median: {results['delivery']['median_ms']:.1f} ms",
        f"- 99th percentile: {results['delivery']['p99_ms']:.1f} ms",
        f"- maximum: {results['delivery']['max_ms']:.1f} ms",
        "",
        "## Memory",
        "",
        "Resident memory of each gunicorn worker after serving the load and "
        "loading both mapping generations: "
        + ", ".join(f"{size:.1f} MB" for size in results["memory_mb"])
        + ".",
        "",
    ]
    path.write_text("\n".join(lines))


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    match = re.search(r"model name\s*:\s*(.+)", text)
    return match.group(1).strip() if match else "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk run length")
    # The benchmark's store is a local SQLite file, so requests are CPU-bound
    # and more processes with fewer threads each contend less for the GIL.
    # In production requests wait on S3, which the config's 8 threads cover.
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker")
    parser.add_argument("--delivery-samples", type=int, default=200)
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md"
    )
    options = parser.parse_args()
    wrk = ensure_wrk()
    results: dict = {
        "seconds": options.seconds,
        "workers": options.workers,
        "threads": options.threads,
    }

    print("timing the transformation", flush=True)
    results["transform"] = {
        f"{name}: transform_run_data": measure_transform(name)
        for name in ("nominal protocol 2", "largest realistic run")
    }
    results["transform"]["room exit: RunSerializer to JSON text"] = measure_room_exit()

    directory = Path(tempfile.mkdtemp(prefix="argus-bench-"))
    store_url = f"sqlite:///{directory / 'store.sqlite3'}"
    store = open_store(store_url)
    store.put(MAPPINGS_KEY, (DATA_DIR / "ui_mappings_2025-10.json").read_bytes())
    links = LinkRegistry(store)
    env = support.server_environment(
        ARGUS_STORE=store_url,
        ARGUS_STATE_DIR=str(directory / "state"),
        ARGUS_RATE_LIMITS="off",
        ARGUS_MAPPINGS_REFRESH_SECONDS="1",
        ARGUS_LOG_LEVEL="warning",
        PROMETHEUS_MULTIPROC_DIR=str(directory / "metrics"),
        GUNICORN_CMD_ARGS="--access-logfile=/dev/null",
    )
    emulator_port = support.free_port()
    emulator = support.ServerProcess(
        support.python_command(
            "tools/twitch_emulator.py",
            "--port",
            str(emulator_port),
            "--rate-capacity",
            "1000000",
            "--rate-refill-per-second",
            "1000000",
        ),
        emulator_port,
        env,
        ready_path="/emulator/health",
        log_path=directory / "emulator.log",
    )
    env["ARGUS_TWITCH_API_URL"] = emulator.url
    env["ARGUS_TWITCH_AUTH_URL"] = emulator.url
    port = support.free_port()
    service = support.ServerProcess(
        support.python_command(
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "-w",
            str(options.workers),
            "--threads",
            str(options.threads),
            "-b",
            f"127.0.0.1:{port}",
            "app:app",
        ),
        port,
        env,
        ready_path="/healthz",
        log_path=directory / "service.log",
    )
    try:
        results.update(
            run_load(options, wrk, service, emulator, links, store, directory)
        )
    finally:
        service.stop()
        emulator.stop()
    command = "make bench"
    if options.workers != 4 or options.threads != 2 or options.seconds != 10:
        command = " ".join(["python", "tools/benchmark.py", *sys.argv[1:]])
    write_report(options.output, results, command)
    print(options.output.read_text())


def run_load(options, wrk, service, emulator, links, store, directory) -> dict:
    case = case_named("nominal protocol 2")
    token = links.link("9000000001")
    run_data = dict(
        case["runData"],
        boonData=case["runData"]["boonData"].replace("Common;;", "RARITY;;", 1),
        elementalData="Fire:FIRECOUNT;;Water:1;;Air:2",
    )
    body = {"argusProtocolVersion": "2", "argusToken": token, "runData": run_data}
    script = wrk_post_script(directory, body)
    body = {**body, "runData": case["runData"]}
    # Warm both workers and load the old mapping generation first.
    for _ in range(50):
        requests.post(service.url + "/run_info", json=body, timeout=10)
    store.put(MAPPINGS_KEY, (DATA_DIR / "ui_mappings.json").read_bytes())
    time.sleep(2.5)

    http = []
    for connections in CONNECTIONS:
        for endpoint, body_script in (("/healthz", None), ("/run_info", script)):
            print(f"wrk {endpoint} at {connections} connections", flush=True)
            row = run_wrk(
                wrk, service.url + endpoint, connections, options.seconds, body_script
            )
            http.append({"endpoint": endpoint, "connections": connections, **row})
    at_8 = {row["endpoint"]: row for row in http if row["connections"] == 8}
    ratio = (
        at_8["/run_info"]["requests_per_second"]
        / at_8["/healthz"]["requests_per_second"]
    )
    memory = worker_memory_mb(service.process.pid)
    print("timing delivery", flush=True)
    # Let the flood's last broadcast finish before timing single updates.
    time.sleep(3)
    delivery = measure_delivery_delay(
        service, emulator, links, options.delivery_samples
    )
    return {
        "http": http,
        "run_info_to_ceiling_at_8": ratio,
        "memory_mb": memory,
        "delivery": delivery,
    }


if __name__ == "__main__":
    main()
