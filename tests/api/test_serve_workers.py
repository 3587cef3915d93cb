"""``pantry serve --workers 2``: two processes share the port and answer alike."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pantry import Store
from tests.api.test_http import store  # noqa: F401 - the pushed shop store
from tests.conftest import REPO, free_port
from tests.features.test_historical_oracle import FEATURES


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def test_two_workers_share_the_port_and_answer_as_the_python_api(store: Store) -> None:  # noqa: F811
    port = free_port()
    env = {
        **os.environ,
        "PANTRY_DEFS": str(store.defs),
        "PANTRY_HOME": str(store.home),
        "PANTRY_REDIS_URL": store.online_url,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "pantry.api.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(300):
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            # uvicorn's supervisor spawns one process per worker (multiprocessing's spawn_main)
            spawned = [p for p in _children(server.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
            assert len(spawned) >= 2, spawned
            rows = [{"customer_id": k} for k in (1, 2, 99)]
            expected = store.get_online_features(FEATURES, rows)
            for _ in range(20):  # keep-alive off: new connections land on either worker
                reply = http.post(
                    "/features/online",
                    json={"features": FEATURES, "entities": {"customer_id": [1, 2, 99]}},
                    headers={"Connection": "close"},
                )
                assert reply.status_code == 200
                assert reply.json() == expected
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode in (0, -15), server.stderr.read()[-2000:] if server.stderr else ""
