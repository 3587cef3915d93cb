"""HTTP tail latency alone: `pantry serve` under the open-loop generator of bench/online.py.

Three 20-second runs at 500 requests/s (10 entities x 25 features per request), against
a 150k-entity view, with nothing else running. ``pin`` puts the server on CPU 0 and the
generator on CPU 1 (taskset); ``nopin`` lets the kernel place them.

Run: ``.venv/bin/python bench/http_tail.py pin|nopin``.
"""

import json
import subprocess
import sys
import tempfile
import time

ROOT = __import__("pathlib").Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))
from pathlib import Path

import duckdb
import online as ob

from pantry import Store
from pantry.features.plan import plan_view
from pantry.features.tiles import materialize
from pantry.offline.sources import connect

root = Path(tempfile.mkdtemp())
defs = ob.build_project(root)
proc, url = ob.start_redis(root)
store = Store(defs=defs, home=root / "home", redis_url=url)
store.home.mkdir()
plan = plan_view(store.definitions, store.definitions.views["wide"])
off = duckdb.connect(str(store.offline_db))
materialize(connect(store.definitions, models=plan.models), off, plan, ob.YESTERDAY, ob.YESTERDAY)
off.close()
store.push_online("wide", ob.YESTERDAY)
port = ob.free_port()
env = {"PANTRY_DEFS": str(defs), "PANTRY_HOME": str(store.home), "PANTRY_REDIS_URL": url, "PATH": "/usr/bin:/bin"}
pin = sys.argv[1] == "pin"
server = subprocess.Popen(
    (["taskset", "-c", "0"] if pin else []) + [sys.executable, "-m", "pantry.api.cli", "serve", "--port", str(port)],
    env=env,
)
time.sleep(4)
names = [f"f{i}" for i in range(24)] + ["label_last"]
body = {"features": [f"wide:{n}" for n in names], "entities": {"entity_id": list(range(1000, 1010))}}
gen = (["taskset", "-c", "1"] if pin else []) + [
    sys.executable,
    str(ROOT / "online.py"),
    "--load",
    str(port),
    json.dumps(body),
]
subprocess.run(gen + ["--rate", "200", "--seconds", "2"], check=True, capture_output=True)
for i in range(3):
    out = subprocess.run(gen + ["--rate", "500", "--seconds", "20"], check=True, capture_output=True, text=True)
    lat = sorted(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        sys.argv[1],
        "p50",
        round(lat[len(lat) // 2] * 1000, 2),
        "p99",
        round(lat[int(len(lat) * 0.99) - 1] * 1000, 2),
        "max",
        round(lat[-1] * 1000, 1),
        flush=True,
    )
server.terminate()
proc.terminate()
