"""Serving capacity: the highest request rate `pantry serve` holds at p99 under 10 ms.

Online reads of 10 entities x 25 features (the view of bench/online.py, 150k entities in a
redis-server) from the open-loop generator of bench/online.py, at rising rates for 10 s
each, against one server process and against ``--workers 2``, on this 2-core machine with
the generator on the same cores. Also the server's CPU per request (user + system of every
server process, from /proc, over the requests it answered): a figure that, unlike latency,
does not depend on what else runs. The peer is the same server with one process.

Run: ``.venv/bin/python bench/serve_capacity.py [--rates 500,1000,...]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

import online as bench  # noqa: E402

SECONDS = 10
P99_LIMIT_MS = 10.0


def tree_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) used by ``pid`` and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        proc = int(stat.parent.name)
        if proc == pid or _descends(proc, pid):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _descends(proc: int, ancestor: int) -> bool:
    while proc > 1:
        try:
            proc = int(Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
        if proc == ancestor:
            return True
    return False


def ladder(port: int, server: subprocess.Popen, body: dict, rates: list[int]) -> list[tuple[int, float, float, float]]:
    """(rate, p50 ms, p99 ms, CPU ms per request) per rate, stopping after the first miss."""
    generator = [sys.executable, str(ROOT / "online.py"), "--load", str(port), json.dumps(body)]
    subprocess.run(generator + ["--rate", "200", "--seconds", "2"], check=True, capture_output=True)  # warm
    out = []
    for rate in rates:
        before = tree_cpu(server.pid)
        done = subprocess.run(
            generator + ["--rate", str(rate), "--seconds", str(SECONDS)], check=True, capture_output=True, text=True
        )
        cpu = tree_cpu(server.pid) - before
        latencies = sorted(json.loads(done.stdout.strip().splitlines()[-1]))
        p50, p99 = bench.percentiles(latencies)
        out.append((rate, p50, p99, cpu / len(latencies) * 1000))  # percentiles are in ms
        print(
            f"  {rate:>5} req/s: p50 {p50:6.2f} ms  p99 {p99:7.2f} ms  CPU {out[-1][3]:.3f} ms/request",
            flush=True,
        )
        if p99 > P99_LIMIT_MS:
            break
    return out


def main() -> None:
    rates = [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000]
    if "--rates" in sys.argv:
        rates = [int(r) for r in sys.argv[sys.argv.index("--rates") + 1].split(",")]
    root = Path(tempfile.mkdtemp())
    store, redis_proc, url = bench.served_project(root)
    defs = store.defs
    names = [f"f{i}" for i in range(24)] + ["label_last"]
    body = {"features": [f"wide:{n}" for n in names], "entities": {"entity_id": list(range(1000, 1010))}}
    env = {"PANTRY_DEFS": str(defs), "PANTRY_HOME": str(store.home), "PANTRY_REDIS_URL": url, "PATH": "/usr/bin:/bin"}
    results = {}
    try:
        for workers in (1, 2):
            port = bench.free_port()
            cmd = [sys.executable, "-m", "pantry.api.cli", "serve", "--port", str(port), "--workers", str(workers)]
            server = subprocess.Popen(cmd, env=env)
            try:
                bench.wait_until_healthy(port)
                print(f"pantry serve --workers {workers}:", flush=True)
                results[workers] = ladder(port, server, body, rates)
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        redis_proc.terminate()
    print(f"\n| server | highest rate with p99 < {P99_LIMIT_MS:g} ms | p99 there (ms) | CPU per request (ms) |")
    print("|---|---:|---:|---:|")
    for workers, rows in results.items():
        held = [r for r in rows if r[2] <= P99_LIMIT_MS]
        best = held[-1] if held else (0, 0.0, float("nan"), float("nan"))
        cpu = min(r[3] for r in rows)
        print(f"| {workers} process{'es' if workers > 1 else ''} | {best[0]:,} | {best[2]:.2f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
