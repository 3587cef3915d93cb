"""HTTP tail latency alone: `pantry serve` under the open-loop generator of bench/online.py.

Three 20-second runs at 500 requests/s (10 entities x 25 features per request), against
a 150k-entity view, with nothing else running. ``pin`` puts the server on CPU 0 and the
generator on CPU 1 (taskset); ``nopin`` lets the kernel place them. ``busy`` is ``nopin``
while another client keeps the same server busy with heavy metric queries (24 sums by
all 150k entities, 100k rows capped), back to back: online reads must stay fast.
``bigread`` is ``nopin`` while another client sends online reads of 10,000 entities (the
largest ``PANTRY_MAX_ENTITIES`` allows) back to back: such a read runs in a thread, off
the event loop, so the small reads must not wait behind it.

Run: ``.venv/bin/python bench/http_tail.py pin|nopin|busy|bigread``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

import online as bench  # noqa: E402


def server_cpu(pid: int, ticks: int) -> float:
    """Seconds of CPU (user + system) the server process has used: a figure that, unlike
    latency, does not depend on what else the machine is running."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def heavy_queries(port: int, stop: threading.Event, timings: list[float]) -> None:
    """Metric queries back to back on the same server, until ``stop``."""
    params = {"metrics": ",".join(f"m{i}" for i in range(24)), "group_by": "entity"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        while not stop.is_set():
            started = time.perf_counter()
            reply = client.get("/metrics/query", params=params)
            reply.raise_for_status()
            timings.append(time.perf_counter() - started)


def big_reads(port: int, stop: threading.Event, timings: list[float]) -> None:
    """Online reads of 10,000 entities x 25 features, back to back, until ``stop``."""
    names = [f"f{i}" for i in range(24)] + ["label_last"]
    body = {"features": [f"wide:{n}" for n in names], "entities": {"entity_id": list(range(10_000))}}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.post("/features/online", json=body).raise_for_status()
            timings.append(time.perf_counter() - started)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "nopin"
    pin = mode == "pin"
    root = Path(tempfile.mkdtemp())
    store, redis_proc, url = bench.served_project(root)
    defs = store.defs
    port = bench.free_port()
    env = {"PANTRY_DEFS": str(defs), "PANTRY_HOME": str(store.home), "PANTRY_REDIS_URL": url, "PATH": "/usr/bin:/bin"}
    server_cmd = [sys.executable, "-m", "pantry.api.cli", "serve", "--port", str(port)]
    server = subprocess.Popen((["taskset", "-c", "0"] if pin else []) + server_cmd, env=env)
    bench.wait_until_healthy(port)
    names = [f"f{i}" for i in range(24)] + ["label_last"]
    body = {"features": [f"wide:{n}" for n in names], "entities": {"entity_id": list(range(1000, 1010))}}
    generator = (["taskset", "-c", "1"] if pin else []) + [
        sys.executable,
        str(ROOT / "online.py"),
        "--load",
        str(port),
        json.dumps(body),
    ]
    subprocess.run(generator + ["--rate", "200", "--seconds", "2"], check=True, capture_output=True)
    ticks = os.sysconf("SC_CLK_TCK")
    stop = threading.Event()
    heavy: list[float] = []
    if mode == "busy":
        threading.Thread(target=heavy_queries, args=(port, stop, heavy), daemon=True).start()
    if mode == "bigread":
        threading.Thread(target=big_reads, args=(port, stop, heavy), daemon=True).start()
    for _ in range(3):
        cpu_before = server_cpu(server.pid, ticks)
        done = subprocess.run(
            generator + ["--rate", "500", "--seconds", "20"], check=True, capture_output=True, text=True
        )
        latencies = sorted(json.loads(done.stdout.strip().splitlines()[-1]))
        cpu_ms = (server_cpu(server.pid, ticks) - cpu_before) * 1000 / len(latencies)
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        busy = {"busy": f", {len(heavy)} heavy metric queries so far", "bigread": f", {len(heavy)} big reads so far"}
        busy = busy.get(mode, "")
        print(
            f"{mode}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {latencies[-1] * 1000:.1f} ms, "
            f"server CPU {cpu_ms:.2f} ms per request{busy}",
            flush=True,
        )
    stop.set()
    server.terminate()
    redis_proc.terminate()


if __name__ == "__main__":
    main()
