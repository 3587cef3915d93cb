"""Drift check cost: Pantry's drift verdict for a view partition against Evidently called directly.

Workload: a view of 25 features (20 numeric, 5 categorical) over N entities, the partition
against 7 reference partitions (7 x N rows), N = 10k, 100k and 1M. "Pantry" is
``pantry.monitor.drift.judge``: Evidently's ValueDrift per feature in one report, the
verdicts parsed and the HTML report written, which is what the ``drift`` check does once it
has the frames. "Evidently" is the raw limit: the same Report run on the same frames, with
no parsing and no HTML, on the full frames; "Evidently, sample" runs it on the sample that
Pantry judges (``drift.sample_rows``, 10,000 values a partition), which is Pantry's own
overhead. The frames themselves are the training reads at the stamps, which
bench/pit.py times; they are not part of this figure.

Run: ``.venv/bin/python bench/drift.py`` (``--quick`` stops at 100k). Target: <= 3 s at 100k.
Medians of 3 runs, the sides alternating; the 1M case runs once per side (minutes).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from pantry.monitor.drift import DriftSettings, judge  # noqa: E402

NUMERIC, CATEGORICAL = 20, 5
RUNS = 3


def frames(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def one(rows: int, shift: float) -> pd.DataFrame:
        data = {f"f{i}": rng.normal(10 + shift * (i == 0), 2, rows) for i in range(NUMERIC)}
        data.update({f"c{i}": rng.choice(["a", "b", "c", "d"], rows) for i in range(CATEGORICAL)})
        return pd.DataFrame(data)

    return one(n, 1.0), one(7 * n, 0.0)


def raw(current: pd.DataFrame, reference: pd.DataFrame) -> None:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    numeric = [c for c in current if c.startswith("f")]
    definition = DataDefinition(
        numerical_columns=numeric, categorical_columns=[c for c in current if c.startswith("c")]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Report([ValueDrift(column=c, threshold=0.1) for c in current], include_tests=True).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )


def median(fn) -> float:  # noqa: ANN001
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    sizes = [10_000, 100_000] if "--quick" in sys.argv else [10_000, 100_000, 1_000_000]
    out = Path(tempfile.mkdtemp()) / "report.html"
    settings = DriftSettings()
    print(f"| {'workload':<44} | {'Pantry (s)':>10} | {'Evidently (s)':>13} | {'ratio':>5} | note")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 15}|{'-' * 7}|------")
    for n in sizes:
        current, reference = frames(n)
        names = list(current.columns)
        raw(current.head(1000), reference.head(7000))  # warm imports
        sample = (
            current.sample(n=min(n, settings.sample_rows), random_state=0),
            reference.sample(n=min(7 * n, 7 * settings.sample_rows), random_state=0),
        )
        ours_s, full_s, sample_s = [], [], []
        for _ in range(RUNS if n <= 100_000 else 1):  # alternate the sides run by run; 1M once
            started = time.perf_counter()
            verdicts = judge(current, reference, names, settings, out)
            ours_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            raw(*sample)
            sample_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            raw(current, reference)
            full_s.append(time.perf_counter() - started)
        ours, full, sampled = (statistics.median(t) for t in (ours_s, full_s, sample_s))
        drifted = [v.feature for v in verdicts if v.drifted]
        print(
            f"| {f'25 features x {n:,} entities, 7 reference partitions':<44} | {ours:>10.2f} | {full:>13.2f} | "
            f"{ours / full:>5.2f} | Evidently on Pantry's sample {sampled:.2f} s ({ours / sampled:.2f}x); "
            f"drifted: {drifted} (f0 is shifted); methods: {sorted({v.method for v in verdicts})}",
            flush=True,
        )


if __name__ == "__main__":
    main()
