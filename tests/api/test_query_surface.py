"""The metrics query surface under attack: HTTP and CLI, a real server, a real DuckDB file.

The canary: a file and an offline-store table that the probes name. Every probe is sent
twice, once with both canaries in place and once with both gone; if any probe reached
DuckDB's file system or the offline store, some answer would differ between the two.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from pantry import Store
from pantry.offline.sources import connect
from tests.conftest import SHOP_YAML, Server, run_cli_here, shop_frames, slow_percentile_defs, write_defs

SECRET = "CANARY-7f3a-file-contents"

PII_YAML = SHOP_YAML.replace(
    "      - {name: segment, type: categorical}\n",
    "      - {name: segment, type: categorical}\n      - {name: email, type: categorical, meta: {pii: true}}\n",
).replace(
    "      - {name: region, type: primary, expr: region_id}\n",
    "      - {name: region, type: primary, expr: region_id, config: {meta: {pii: true}}}\n",
)


class Shop:
    def __init__(self, root: Path) -> None:
        self.defs = write_defs(root, {"shop.yaml": PII_YAML})
        frames = shop_frames()
        frames["customers"]["email"] = [f"c{i}@example.com" for i in frames["customers"]["customer_id"]]
        (self.defs / "data").mkdir()
        frames["orders"].to_parquet(self.defs / "data" / "orders.parquet", index=False)
        frames["customers"].to_parquet(self.defs / "data" / "customers.parquet", index=False)
        frames["regions"].to_csv(self.defs / "data" / "regions.csv", index=False)
        self.frames = frames
        self.home = root / "home"
        self.home.mkdir()
        self.canary_dir = root / "canary"
        self.canary_file = self.canary_dir / "secret.csv"

    def plant(self) -> None:
        self.canary_dir.mkdir(exist_ok=True)
        self.canary_file.write_text(f"a\n{SECRET}\n{SECRET}\n")
        con = duckdb.connect(str(self.home / "pantry.duckdb"))
        con.execute(f"CREATE OR REPLACE TABLE canary_secret AS SELECT '{SECRET}' AS a FROM range(5)")
        con.close()

    def remove(self) -> None:
        self.canary_file.unlink(missing_ok=True)
        if self.canary_dir.exists():
            self.canary_dir.rmdir()
        (self.home / "pantry.duckdb").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return Shop(tmp_path_factory.mktemp("surface"))


def hostile_wheres(shop: Shop) -> list[str]:
    f, d = shop.canary_file, shop.canary_dir
    return [
        f"metric_time__year is not null and exists (select 1 from glob('{d}/*'))",
        f"(select count(*) from read_csv('{f}')) > 1",
        f"read_text('{f}') like '%CANARY%'",
        f"read_blob('{f}') is not null",
        f"metric_time__day in (select a from read_csv('{f}'))",
        "(select count(*) from canary_secret) > 0",
        "exists (select 1 from offline.main.canary_secret)",
        "(select count(*) from range(200000) a, range(200000) b) > 0",
        "1=1; drop table canary_secret",
        "1=1; COPY (select 1) TO '/tmp/pantry-probe.csv'",
        f"ATTACH '{shop.home}/pantry.duckdb' AS o",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "PRAGMA database_list",
        "select * from canary_secret",
        "getenv('HOME') like '/root%'",
        "current_setting('home_directory') is not null",
        f"metric_time__day > '2024-01-01' -- ' or exists(select 1 from glob('{d}/*'))",
        f"/* */ exists(select 1 from glob('{d}/*')) or 1=1",
        "metric_time__day > '2024-01-01' /*",
        '"canary_secret"."a" is not null',
        f"\"read_text\"('{f}') is not null",
        "offline.main.canary_secret.a is not null",
        "ｅxists (select 1 from canary_secret)",  # fullwidth e
        "metric_time__dáy > '2024-01-01'",
        "metric_time__day > '2024-01-01' and '\u202e' = '\u202e' and exists(select 1 from canary_secret)",
        "columns(*) is not null",
        "struct_pack(a := 1) is not null",
        "[1, 2][1] = 1",
        "list_transform([1], x -> x + 1) is not null",
        "exists (with recursive t(n) as (select 1 union all select n + 1 from t) select * from t)",
        "metric_time__day = $1",
        "metric_time__day = ?",
        "query('select * from canary_secret') is not null",
        "query_table('canary_secret') is not null",
        "(metric_time__day, 1) = (1, 1)",
        "metric_time__day is not null) or (1=1",
        "{{ Dimension.__globals__ }} = 1",
        "{{ ''.__class__.__mro__ }} = 1",
        "{% for x in range(9) %}1=1{% endfor %}",
        '{{ Dimension("x\' or exists(select 1 from canary_secret) --") }} = 1',
        "1=1 and " * 600 + "1=1",  # very long
        "(" * 200 + "1=1" + ")" * 200,  # very deep
    ]


HOSTILE_PARAMS: list[dict[str, str]] = [
    {"limit": "-5"},
    {"limit": "0"},
    {"limit": "1e9x"},
    {"order": "canary_secret"},
    {"group_by": "metric_time__fortnight"},
    {"group_by": 'metric_time__day" from canary_secret --'},
    {"start_time": "../../etc/passwd"},
    {"metrics": "read_csv('/etc/passwd')"},
]


@pytest.fixture(scope="module")
def http(shop: Shop) -> Iterator[object]:
    store = Store(defs=shop.defs, home=shop.home, redis_url="redis://127.0.0.1:1/0")
    with Server(store, api_keys="analyst=s3cret-read:read,ops=s3cret-pii:read+pii") as client:
        yield client


READ = {"X-API-Key": "s3cret-read"}
PII = {"X-API-Key": "s3cret-pii"}


def ask(http: object, where: str | None = None, headers: dict | None = None, **params: str) -> tuple[int, str]:
    query = {"metrics": "revenue", "group_by": "metric_time__month", **params}
    if where is not None:
        query["where"] = where
    reply = http.get("/metrics/query", params=query, headers=headers or READ)  # type: ignore[attr-defined]
    return reply.status_code, reply.text


def answers_in_both_worlds(shop: Shop, probe) -> list[tuple[int, str]]:  # noqa: ANN001
    shop.plant()
    try:
        planted = probe()
    finally:
        shop.remove()
    absent = probe()
    assert planted == absent, "a probe's answer depends on whether the canary exists"
    return planted


def test_hostile_wheres_get_a_4xx_with_a_reason_and_learn_nothing(
    shop: Shop, http: object, caplog: pytest.LogCaptureFixture
) -> None:
    wheres = hostile_wheres(shop)
    with caplog.at_level(logging.WARNING, logger="pantry.http"):
        answers = answers_in_both_worlds(shop, lambda: [ask(http, w) for w in wheres])
    for where, (status, body) in zip(wheres, answers):
        assert status == 422, (where, status, body)
        assert "detail" in body and len(body) > 20, (where, body)
        assert SECRET not in body and "Traceback" not in body
    assert not Path("/tmp/pantry-probe.csv").exists()
    refusals = [r.getMessage() for r in caplog.records if r.name == "pantry.http"]
    assert len(refusals) == 2 * len(wheres)
    assert all("key analyst" in r and "s3cret" not in r for r in refusals)
    assert "refused 422 /metrics/query: the where condition does not parse: EXISTS is not allowed" in refusals[0]


def test_each_construct_is_named(http: object) -> None:
    named = {
        "exists (select 1)": "EXISTS is not allowed",
        "(select 1) = 1": "a subquery is not allowed",
        "glob('/x') is null": "the function 'glob'",
        "read_csv('/x') is null": "the function 'read_csv'",
        "1=1; select 1": "holds 2 statements",
        "PRAGMA version": "the statement PRAGMA",
        "metric_time__month = 1 -- x": "comments",
        "{% if 1 %}1=1{% endif %}": "Jinja statements",
    }
    for where, words in named.items():
        status, body = ask(http, where)
        assert status == 422 and words in body, (where, body)


def test_hostile_parameters_get_a_4xx(shop: Shop, http: object) -> None:
    answers = answers_in_both_worlds(shop, lambda: [ask(http, None, **p) for p in HOSTILE_PARAMS])
    for params, (status, body) in zip(HOSTILE_PARAMS, answers):
        assert status == 422, (params, body)
        assert SECRET not in body
    assert "greater than or equal to 1" in answers[0][1]
    assert "cannot order by 'canary_secret'" in answers[3][1]


def brute_revenue_by_month(frames: dict[str, pd.DataFrame], keep: pd.Series | None = None) -> dict[str, float]:
    orders = frames["orders"] if keep is None else frames["orders"][keep]
    months = orders["ordered_at"].dt.to_period("M").dt.start_time.dt.strftime("%Y-%m-%d")
    return orders.groupby(months)["amount"].sum().to_dict()


def as_dict(body: dict) -> dict[str, float]:
    return {row[0][:10]: row[1] for row in body["rows"]}


def test_allowed_wheres_answer_as_brute_force_says(shop: Shop, http: object) -> None:
    frames = shop.frames
    every = brute_revenue_by_month(frames)
    january = {k: v for k, v in every.items() if k == "2024-01-01"}
    cases = {
        "1=1": every,  # a constant predicate is legal SQL
        "1=0": {},
        "lower(cast(metric_time__month as varchar)) like '2024-01%'": january,
        "extract(month from metric_time__month) = 1 and metric_time__month between '2024-01-01' and '2024-01-31'": january,
        "date_trunc('month', metric_time__month) < current_date - interval 3 day": every,
    }
    for where, expected in cases.items():
        reply = http.get(  # type: ignore[attr-defined]
            "/metrics/query",
            params={"metrics": "revenue", "group_by": "metric_time__month", "where": where},
            headers=READ,
        )
        assert reply.status_code == 200, (where, reply.text)
        assert as_dict(reply.json()) == pytest.approx(expected), where
    reply = http.get(  # type: ignore[attr-defined]
        "/metrics/query", params={"metrics": "big_orders", "group_by": "metric_time__month"}, headers=READ
    )
    counts = frames["orders"].assign(big=frames["orders"]["amount"] >= 100)
    months = counts["ordered_at"].dt.to_period("M").dt.start_time.dt.strftime("%Y-%m-%d")
    assert as_dict(reply.json()) == counts.groupby(months)["big"].sum().to_dict()
    assert reply.json()["truncated"] is False


def test_pii_dimensions_and_entities_need_the_pii_scope(shop: Shop, http: object) -> None:
    refused = [
        {"group_by": "customer__email"},
        {"group_by": "metric_time__month,customer__region"},  # entity marked in config.meta
        {"where": "{{ Dimension('customer__email') }} = 'c1@example.com'"},
        {"where": "customer__email like 'c1@%'"},
    ]
    for params in refused:
        status, body = ask(http, **params)
        assert status == 403, (params, body)
        assert "@example.com" not in body.replace("c1@example.com", "").replace("c1@%", "")
        assert "pii" in body and '"rows"' not in body
    status, body = ask(http, headers=PII, group_by="customer__email", where="customer__email = 'c3@example.com'")
    assert status == 200, body
    orders = shop.frames["orders"]
    assert [row[1] for row in json.loads(body)["rows"]] == [orders.loc[orders["customer_id"] == 3, "amount"].sum()]
    status, _ = ask(http, group_by="customer__segment")  # not marked: open to a read key
    assert status == 200


def test_row_cap_and_timeout(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PANTRY_MAX_ROWS", "5")
    store = Store(defs=shop.defs, home=shop.home, redis_url="redis://127.0.0.1:1/0")
    with Server(store) as client:
        full = client.get("/metrics/query", params={"metrics": "revenue", "group_by": "metric_time__day"}).json()  # type: ignore[attr-defined]
        assert len(full["rows"]) == 5 and full["truncated"] is True
        small = client.get(  # type: ignore[attr-defined]
            "/metrics/query", params={"metrics": "revenue", "group_by": "metric_time__day", "limit": 3}
        ).json()
        assert len(small["rows"]) == 3 and small["truncated"] is False
        days = sorted(shop.frames["orders"]["ordered_at"].dt.strftime("%Y-%m-%d").unique())
        assert [r[0][:10] for r in full["rows"]] == days[:5]

    # a query that takes seconds, legal by every rule: count distinct over 6M rows
    slow = slow_percentile_defs(tmp_path)
    monkeypatch.setenv("PANTRY_QUERY_TIMEOUT", "0.05")
    slow_store = Store(defs=slow, home=tmp_path / "home", redis_url="redis://127.0.0.1:1/0")
    with Server(slow_store, api_keys="batch=k-slow:read") as client, caplog.at_level(logging.WARNING, "pantry.http"):
        reply = client.get(
            "/metrics/query", params={"metrics": "p50", "group_by": "event"}, headers={"X-API-Key": "k-slow"}
        )  # type: ignore[attr-defined]
        assert reply.status_code == 504, reply.text
        logged = [r.getMessage() for r in caplog.records if "refused 504" in r.getMessage()]
        assert (
            len(logged) == 1
            and "key batch" in logged[0]
            and "group_by=event" in logged[0]
            and "k-slow" not in logged[0]
        )
        detail = reply.json()["detail"]  # stopped in its worker, or (on a busy machine) the worker replaced
        assert "ran longer than 0.05 s" in detail or "past PANTRY_QUERY_TIMEOUT (0.05 s)" in detail, detail
        again = client.get("/metrics/query", params={"metrics": "p50"}, headers={"X-API-Key": "k-slow"})  # type: ignore[attr-defined]
        assert again.status_code in (200, 504)  # the worker took the next query
        assert client.get("/healthz").status_code in (200, 503)  # type: ignore[attr-defined]  # the server still answers


def test_the_connection_itself_refuses_files_settings_and_attach(shop: Shop) -> None:
    """Defence in depth: even SQL that never passed the where check cannot leave the store."""
    shop.plant()
    try:
        store = Store(defs=shop.defs, home=shop.home)
        con = connect(store.definitions, store.offline_db, locked=True)
        assert con.execute('SELECT count(*) FROM src."orders"').fetchall() == [(len(shop.frames["orders"]),)]
        assert con.execute('SELECT count(*) FROM src."regions"').fetchall() == [(3,)]
        for sql in (
            f"SELECT * FROM read_csv('{shop.canary_file}')",
            f"SELECT * FROM glob('{shop.canary_dir}/*')",
            f"ATTACH '{shop.home}/pantry.duckdb' AS o",
            "SET enable_external_access = true",
            f"COPY (SELECT 1) TO '{shop.canary_dir}/out.csv'",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql).fetchall()
        con.close()
    finally:
        shop.remove()


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, shop: Shop, *args: str) -> tuple[int, str]:
    env = {"PANTRY_DEFS": str(shop.defs), "PANTRY_HOME": str(shop.home)}
    code, out, err = run_cli_here(monkeypatch, capsys, ["query", "--metrics", "revenue", *args], env)
    return code, out + err


def test_the_cli_refuses_the_same_corpus(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    wheres = hostile_wheres(shop)

    def probe() -> list[tuple[int, str]]:
        return [run_cli(monkeypatch, capsys, shop, "--group-by", "metric_time__month", "--where", w) for w in wheres]

    answers = answers_in_both_worlds(shop, probe)
    for where, (code, text) in zip(wheres, answers):
        assert code == 1, (where, text)
        assert "error:" in text and "Traceback" not in text and SECRET not in text, (where, text)
    code, text = run_cli(monkeypatch, capsys, shop, "--group-by", "metric_time__month", "--limit", "-5")
    assert code == 1 and "limit '-5' is not a whole number of at least 1" in text
