"""``pantry init DIR``: a project of one's own that runs with Pantry installed from a wheel.

Why templates on disk and not strings in code: what a new user gets is what they read
here, file by file. Why the sample data is generated and not shipped: a seeded generator
gives the same rows on every machine in a few kilobytes of code.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from string import Template

from pantry.errors import PantryError

EXAMPLES = ("shop",)
TEMPLATES = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Created:
    """What ``init`` wrote, for the CLI to list."""

    root: Path
    name: str
    files: tuple[Path, ...]


def init_project(target: Path, example: str = "shop") -> Created:
    """Write the project into ``target`` (a new or empty folder); nothing is written when
    the folder already holds files, so no work of the user's is ever overwritten."""
    if example not in EXAMPLES:
        raise PantryError(f"unknown example '{example}'", field="--example", hint=f"use one of: {', '.join(EXAMPLES)}")
    target = target.expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise PantryError(f"'{target}' is a file", hint="name a new folder, e.g. 'pantry init my_shop'")
    if target.exists() and any(target.iterdir()):
        raise PantryError(
            f"'{target}' is not empty; pantry init writes only into a new or empty folder",
            hint=f"name a new folder, e.g. 'pantry init {target.name}_pantry'",
        )
    name = project_name(target.name)
    values = {"name": name, "version": installed_version()}
    plan = {
        "metrics_defs/shop.yaml": "shop.yaml.tmpl",
        "definitions.py": "definitions.py.tmpl",
        "workspace.yaml": "workspace.yaml.tmpl",
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        "tests/test_project.py": "test_project.py.tmpl",
        ".gitignore": "gitignore.tmpl",
    }
    written: list[Path] = []
    for relative, template in plan.items():
        text = Template((TEMPLATES / example / template).read_text()).safe_substitute(values)
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    data = target / "metrics_defs" / "data" / "orders.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    write_orders(data)
    written.append(data)
    return Created(target, name, tuple(written))


def project_name(folder: str) -> str:
    """A folder name as a Dagster code location and Python project name accept it."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", folder).strip("_").lower() or "pantry_project"
    return f"p_{name}" if name[0].isdigit() else name


def installed_version() -> str:
    try:
        return metadata.version("pantry")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0.1.0"


def write_orders(path: Path, customers: int = 200, start: date = date(2026, 11, 1), days: int = 30) -> int:
    """A month of orders: each customer orders on about one day in five, amounts drawn
    from a gamma distribution, most orders completed. Seeded: the same rows everywhere."""
    rng = random.Random(2026)
    rows = []
    for offset in range(days):
        day = datetime.combine(start + timedelta(days=offset), datetime.min.time())
        for customer in range(1, customers + 1):
            if rng.random() >= 0.2:
                continue
            rows.append(
                {
                    "order_id": len(rows) + 1,
                    "customer_id": customer,
                    "ordered_at": (day + timedelta(seconds=rng.randrange(86_400))).isoformat(sep=" "),
                    "amount": round(rng.gammavariate(2.0, 30.0), 2),
                    "status": rng.choices(["completed", "returned", "cancelled"], [85, 10, 5])[0],
                    "channel": rng.choices(["web", "app", "store"], [5, 3, 2])[0],
                }
            )
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
