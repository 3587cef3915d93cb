"""``pantry serve``: the HTTP API (FastAPI), a thin layer over ``Store``.

Why thin: every answer here is what the Python API answers, so the HTTP server cannot
drift from training or from the CLI. This module adds only what HTTP needs: JSON shapes,
status codes (422 for a bad request, 503 when Redis is down, 401/403 for keys, scopes and
pii, 413 past a size limit, 429 when the query queue is full, 504 for a metric query past
``PANTRY_QUERY_TIMEOUT``), the limits of ``limits.py``, an audit log of every refusal
(logger ``pantry.http``, with the key's name, never the key) and Prometheus metrics
labelled by route template, so that no client can grow them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from pantry.api.limits import Limits
from pantry.api.query_pool import PastDeadline, QueryWorkers, QueueFull, WorkerStopped
from pantry.api.query_worker import json_value, read_online, run_query, worker_pool
from pantry.api.store import Store
from pantry.compile.pii import PiiNames
from pantry.errors import PantryError, QueryFailed, QueryTimeout
from pantry.online.client import RedisRefused, RedisUnavailable

OPEN_PATHS = {"/healthz", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc"}
# query parameters that look like a key: refused (keys go in headers) and never logged
KEY_PARAMS = {"api_key", "apikey", "key", "token", "access_token"}
ONLINE_PATH = "/features/online"
INLINE_CELLS = 2_000  # an online read of more entities x features than this goes to the read worker
audit = logging.getLogger("pantry.http")


class OnlineRequest(BaseModel):
    features: list[str] = Field(..., min_length=1, examples=[["customer_orders:revenue_90d"]])
    entities: dict[str, list[Any]] = Field(..., min_length=1, examples=[{"customer_id": [1, 2]}])


@dataclass(frozen=True)
class ApiKey:
    """A key's name (what the logs show) and its scopes."""

    name: str
    scopes: frozenset[str]


def parse_keys(text: str | None) -> dict[str, ApiKey]:
    """``key1:pii+read,analyst=key2:read`` -> {key: ApiKey}.

    A key may carry a name (``name=key:scopes``); without one, its name is ``key-`` and the
    first 8 hex digits of its SHA-256, so logs can tell keys apart without holding them.
    """
    keys: dict[str, ApiKey] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if item:
            named, _, scopes = item.partition(":")
            name, eq, key = named.partition("=")
            if not eq:
                key, name = name, "key-" + hashlib.sha256(name.encode()).hexdigest()[:8]
            keys[key] = ApiKey(name, frozenset(filter(None, scopes.split("+"))) or frozenset({"read"}))
    return keys


def redacted_query(raw: bytes) -> tuple[str, bool]:
    """The query string with any key-like parameter's value replaced, and whether one was there."""
    text = raw.decode("latin-1")
    if not text:
        return text, False
    pairs = parse_qsl(text, keep_blank_values=True)
    found = any(k.lower() in KEY_PARAMS for k, _ in pairs)
    if not found:
        return text, False
    return urlencode([(k, "REDACTED" if k.lower() in KEY_PARAMS else v) for k, v in pairs]), True


def _view_of(ref: str) -> str:
    return ref.partition(":")[0]


def serving_app() -> FastAPI:
    """The app ``pantry serve`` runs, one per worker process, from the environment.

    Everything loaded here lives as long as the server: it is kept out of the cyclic
    collector's reach, so a full collection cannot stall a request for tens of ms."""
    import gc

    app = create_app(Store())
    gc.collect()
    gc.freeze()
    return app


def create_app(store: Store | None = None, api_keys: str | None = None) -> FastAPI:
    store = store or Store()
    keys = parse_keys(api_keys if api_keys is not None else os.environ.get("PANTRY_API_KEYS"))
    limits = Limits.from_env()
    registry = CollectorRegistry()
    latency = Histogram(
        "pantry_request_seconds",
        "Request latency, by route template (never the raw path)",
        ["path", "method", "status"],
        registry=registry,
        buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
    )
    redis_errors = Counter("pantry_redis_errors_total", "Redis calls that failed after retries", registry=registry)
    stamp_age = Gauge(
        "pantry_last_pushed_stamp_age_seconds", "Age of the newest pushed stamp", ["view"], registry=registry
    )
    workers = QueryWorkers(
        lambda: worker_pool(
            store.defs, store.home, store.redis_url, store.offline_uri, limits.query_memory, store.engine_url
        ),
        workers=limits.query_workers,
        queue=limits.query_queue,
    )

    # large online reads: their own worker process, so their GIL-bound decoding and encoding
    # never delays the small reads the event loop answers in a millisecond
    readers = QueryWorkers(
        lambda: worker_pool(store.defs, store.home, store.redis_url, store.offline_uri, engine=store.engine_url),
        workers=1,
        queue=limits.query_queue,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        workers.warm()
        readers.warm()
        yield
        workers.shutdown()  # a running query ends within its timeout
        readers.shutdown()

    app = FastAPI(
        title="Pantry",
        description="Metrics and features, defined once and served consistently.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.limits = limits
    app.state.workers = workers

    def route_of(scope: dict) -> str:
        """The route template a path matches (``/push/{model}``), or ``unmatched``: a label
        per route, however many different paths clients send."""
        for route in app.router.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", "unmatched")
        return "unmatched"

    async def buffered_body(receive, limit: int) -> bytes | None:  # noqa: ANN001
        """The whole request body, or None once it passes ``limit`` bytes (nothing more is read)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    class Guard:
        """Pure ASGI middleware: API keys and request timing, without Starlette's per-request task overhead."""

        def __init__(self, inner) -> None:  # noqa: ANN001
            self.inner = inner

        async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
            if scope["type"] != "http":
                await self.inner(scope, receive, send)
                return
            started = time.perf_counter()
            path = scope["path"]
            status = {"code": 500}
            scope.setdefault("state", {})

            async def answer(code: int, reason: str, key_name: str = "?") -> None:
                """A refusal before routing: its label is the route the path would match."""
                _log_refusal(code, path, key_name, reason, scope)
                await JSONResponse({"detail": reason}, status_code=code)(scope, receive, send)
                latency.labels(route_of(scope), scope["method"], str(code)).observe(time.perf_counter() - started)

            shown, keyed = redacted_query(scope.get("query_string", b""))
            if keyed:  # never in a log, ours or the access log's, which reads this scope
                scope["query_string"] = shown.encode("latin-1")
                await answer(
                    401, "an API key in the URL is refused (URLs are logged): send it in a header, 'X-API-Key: <key>'"
                )
                return
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limits.max_body_bytes):
                await answer(413, f"the body is larger than {limits.max_body_bytes:,} bytes (PANTRY_MAX_BODY_BYTES)")
                return
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body = await buffered_body(receive, limits.max_body_bytes)
                if body is None:
                    await answer(
                        413, f"the body is larger than {limits.max_body_bytes:,} bytes (PANTRY_MAX_BODY_BYTES)"
                    )
                    return
                sent = {"done": False}

                async def replay():  # noqa: ANN202
                    if not sent["done"]:
                        sent["done"] = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                receive = replay  # noqa: PLW2901
            if keys and path not in OPEN_PATHS:
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                presented = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
                if presented not in keys:
                    reason = "missing or unknown API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
                    await answer(401, reason, "no key" if not presented else "unknown key")
                    return
                scope["state"]["scopes"] = keys[presented].scopes
                scope["state"]["key_name"] = keys[presented].name
            else:
                scope["state"]["scopes"] = {"read", "pii", "write"}
                scope["state"]["key_name"] = "open"

            if path == ONLINE_PATH and scope["method"] == "POST":
                answered = small_online_read(body, scope["state"]["scopes"])
                if answered is not None:
                    code, content = answered
                    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]
                    await send({"type": "http.response.start", "status": code, "headers": headers})
                    await send({"type": "http.response.body", "body": content})
                    latency.labels(ONLINE_PATH, "POST", str(code)).observe(time.perf_counter() - started)
                    return

            async def sending(message) -> None:  # noqa: ANN001
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            await self.inner(scope, receive, sending)
            # the router names the route it matched; no match (a 404) is one label for all paths
            label = getattr(scope.get("route"), "path", "unmatched")
            latency.labels(label, scope["method"], str(status["code"])).observe(time.perf_counter() - started)

    app.add_middleware(Guard)

    def _log_refusal(status: int, path: str, key_name: str, reason: str, scope: dict) -> None:
        query, _ = redacted_query(scope.get("query_string", b""))
        audit.warning("refused %s %s: %s; key %s; query %r", status, path, reason, key_name, query[:2000])

    def refuse(request: Request, status: int, reason: str) -> JSONResponse:
        """Every refusal goes through here: logged with the key's name and the parameters."""
        _log_refusal(status, request.url.path, getattr(request.state, "key_name", "?"), reason, request.scope)
        return JSONResponse({"detail": reason}, status_code=status)

    def lacks(request: Request, scope: str) -> JSONResponse | None:
        """403 unless the request's key has ``scope`` (every route but the open ones asks)."""
        if scope in request.state.scopes:
            return None
        return refuse(request, 403, f"this route needs the '{scope}' scope; this API key lacks it")

    # which features need the pii scope, worked out once instead of on every online read
    views = store.definitions.views.values()
    pii_views = {v.name for v in views if v.pii}
    pii_features = {f"{v.name}:{f.name}" for v in views for f in v.features if f.pii}

    pii_names = PiiNames.of(store.definitions)

    def small_online_read(body: bytes, scopes: set[str]) -> tuple[int, bytes] | None:
        """The common online read, answered before FastAPI routes and validates it; None when
        the route must answer (anything to refuse or report, or a read for the read worker).

        Why: routing, the dependency solver and pydantic's validation of the body cost about
        a fifth of a small read's CPU. A body that is exactly ``{"features": [text, ...],
        "entities": {name: [key, ...], ...}}``, allowed, small and answerable, is answered
        here with the route's own read; every other body takes the route, which gives the
        same answers and every error, status and log line, as before."""
        if "read" not in scopes:
            return None
        try:
            asked = json.loads(body)
        except ValueError:
            return None
        if type(asked) is not dict or asked.keys() != {"features", "entities"}:
            return None
        features, entities = asked["features"], asked["entities"]
        if type(features) is not list or not features or any(type(f) is not str for f in features):
            return None
        if type(entities) is not dict or not entities or any(type(v) is not list for v in entities.values()):
            return None
        lengths = {len(v) for v in entities.values()}
        count = lengths.pop()
        if lengths or count > limits.max_entities or count * len(features) > INLINE_CELLS:
            return None
        if "pii" not in scopes and any(_view_of(ref) in pii_views or ref in pii_features for ref in features):
            return None
        rows = [{k: v[i] for k, v in entities.items()} for i in range(count)]
        try:
            return 200, store.get_online_json(features, rows)
        except (RedisUnavailable, RedisRefused) as err:  # as the route answers, without its retries again
            redis_errors.inc()
            return (503 if isinstance(err, RedisUnavailable) else 500), json.dumps({"detail": str(err)}).encode()
        except Exception:  # noqa: BLE001 - a bad name, a bad key: the route says what and why
            return None

    @app.exception_handler(PantryError)
    async def pantry_error(request: Request, err: PantryError) -> JSONResponse:
        if isinstance(err, RedisUnavailable):
            redis_errors.inc()
            return JSONResponse({"detail": str(err)}, status_code=503)
        if isinstance(err, RedisRefused):  # the store's state, not the request, is at fault
            redis_errors.inc()
            return JSONResponse({"detail": str(err)}, status_code=500)
        if isinstance(err, QueryTimeout):
            return refuse(request, 504, str(err))
        if isinstance(err, QueryFailed):
            return refuse(request, 500, err.public())
        return refuse(request, 422, err.public())

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> JSONResponse:
        """A fault in Pantry, not in the request: a JSON reason, never a traceback in the body
        (the server's log keeps the traceback)."""
        audit.exception("unexpected error on %s", request.url.path)
        first = (str(err).strip().splitlines() or [""])[0]
        return JSONResponse(
            {"detail": f"unexpected {type(err).__name__}: {first} (a fault in the server; its log has the details)"},
            status_code=500,
        )

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, err: RequestValidationError) -> JSONResponse:
        details = [
            {k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in err.errors()
        ]  # the input itself is not echoed
        reason = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details)
        _log_refusal(422, request.url.path, getattr(request.state, "key_name", "?"), reason, request.scope)
        return JSONResponse({"detail": details}, status_code=422)

    @app.post(
        "/features/online",
        summary="Served feature values, exactly what training read at the pushed stamp",
        response_model=dict[str, list[Any]],
    )
    async def features_online(body: OnlineRequest, request: Request) -> Response:
        # An async handler that calls the blocking Redis client directly. Why: a plain `def`
        # handler hands each request to a worker thread, and redis.asyncio's pipeline costs
        # several times the CPU of the blocking one (measured: 0.16-0.22 ms per 10 x 25 read
        # blocking, 1.6-2.9 ms through a thread, 4-6 ms on redis.asyncio). One pipelined
        # round trip holds the event loop for about a tenth of a millisecond; when Redis is
        # down, its retries are bounded (seconds) and every online request fails anyway.
        if (refused := lacks(request, "read")) is not None:
            return refused
        lengths = {len(v) for v in body.entities.values()}
        if len(lengths) != 1:
            raise PantryError("every entity key list must have the same length", field="entities")
        if max(lengths) > limits.max_entities:
            return refuse(
                request,
                413,
                f"{max(lengths):,} entities in one read; at most {limits.max_entities:,} (PANTRY_MAX_ENTITIES)",
            )
        if "pii" not in request.state.scopes:
            refused = next((ref for ref in body.features if _view_of(ref) in pii_views or ref in pii_features), None)
            if refused is not None:
                return refuse(request, 403, f"'{refused}' is tagged pii; this API key lacks the 'pii' scope")
        count = lengths.pop()
        rows = [{k: v[i] for k, v in body.entities.items()} for i in range(count)]
        if count * len(body.features) <= INLINE_CELLS:
            # the stored values are JSON text already: joined as they come, skip re-validation
            return Response(store.get_online_json(body.features, rows), media_type="application/json")
        try:
            status, encoded = await readers.run(
                read_online, body.features, rows, deadline=time.time() + limits.query_timeout
            )
        except QueueFull:
            return refuse(request, 429, f"{limits.query_queue} large online reads already wait; retry shortly")
        except PastDeadline:
            return refuse(request, 504, f"the read took longer than PANTRY_QUERY_TIMEOUT ({limits.query_timeout:g} s)")
        except WorkerStopped:
            return refuse(request, 503, "the read worker stopped; retry the read")
        if status != 200:
            if status == 503:
                redis_errors.inc()
            return refuse(request, status, json.loads(encoded)["detail"])
        return Response(encoded, media_type="application/json")

    @app.post(
        "/push/{model}",
        summary="Rows into an `ingest: push` model: durable before the answer, a bad row refused with its reason",
    )
    async def push(model: str, rows: list[dict[str, Any]], request: Request) -> Response:
        if "write" not in request.state.scopes:
            return refuse(request, 403, "pushing rows needs the 'write' scope; this API key lacks it")
        if len(rows) > limits.max_push_rows:
            return refuse(
                request, 413, f"{len(rows):,} rows in one push; at most {limits.max_push_rows:,} (PANTRY_MAX_PUSH_ROWS)"
            )
        result = await run_in_threadpool(store.push, model, rows)
        return JSONResponse(result.as_dict())

    @app.get(
        "/metrics/query",
        summary="Query metrics by name, as `pantry query` does",
        description="`where` is one condition over group-by names (or MetricFlow Jinja), literals, operators and "
        "scalar string, number and date functions. At most PANTRY_MAX_ROWS rows come back (`truncated` says when "
        "more matched); a query past PANTRY_QUERY_TIMEOUT seconds answers 504.",
    )
    async def metrics_query(
        request: Request,
        metrics: str = Query("", examples=["revenue"]),
        saved_query: str | None = Query(None, description="a saved query's name (saved_queries:)"),
        group_by: str = "",
        where: list[str] | None = Query(None),
        start_time: str | None = None,
        end_time: str | None = None,
        order: str | None = None,
        limit: int | None = Query(None, ge=1),
        min_max_only: bool = Query(False, description="without metrics: each group-by's smallest and largest value"),
        apply_group_by: bool = Query(True, description="without metrics: false keeps every row, not the distinct ones"),
    ) -> Any:
        deadline = time.time() + limits.query_timeout  # the wait for a worker counts
        if (refused := lacks(request, "read")) is not None:
            return refused
        if pii_names and "pii" not in request.state.scopes:
            saved = store.definitions.saved_queries.get(saved_query or "")
            names = [g.strip() for g in group_by.split(",") if g.strip()] + list(saved.group_by if saved else ())
            refused = pii_names.read_by(names, [*(where or []), *(saved.where if saved else ())])
            if refused:
                return refuse(request, 403, f"'{refused[0]}' is marked pii; this API key lacks the 'pii' scope")
        params = dict(
            metrics=metrics,
            saved_query=saved_query,
            group_by=group_by,
            where=where,
            start_time=start_time,
            end_time=end_time,
            order=order,
            limit=limit,
            min_max_only=min_max_only,
            apply_group_by=apply_group_by,
        )
        try:
            status, body = await workers.run(
                run_query, params, limits.query_timeout, deadline, limits.max_rows, deadline=deadline
            )
        except QueueFull:
            return refuse(
                request,
                429,
                f"{limits.query_queue} metric queries already wait for a worker (PANTRY_QUERY_QUEUE); retry shortly",
            )
        except PastDeadline as late:
            where = "waited for a worker" if late.waited else "ran, and its worker was replaced"
            return refuse(request, 504, f"the query {where} past PANTRY_QUERY_TIMEOUT ({limits.query_timeout:g} s)")
        except WorkerStopped:
            return refuse(request, 503, "the query worker stopped; retry the query")
        if status != 200:
            return refuse(request, status, json.loads(body)["detail"])
        return Response(body, media_type="application/json")

    @app.get("/catalog", summary="Metrics and features with owners, lineage and freshness")
    def catalog(request: Request, search: str | None = None) -> Any:
        if (refused := lacks(request, "read")) is not None:
            return refused
        return [
            {k: json_value(v) if not isinstance(v, (dict, list)) else v for k, v in e.items()}
            for e in store.catalog(search)
        ]

    @app.get("/healthz", summary="Redis and the offline store answer")
    def healthz() -> JSONResponse:
        status: dict[str, str] = {}
        try:
            store.online.ping()
            status["redis"] = "ok"
        except Exception as err:  # noqa: BLE001 - any failure is unhealthy
            status["redis"] = f"error: {err}"
        try:
            status["offline"] = store.offline.check()
        except Exception as err:  # noqa: BLE001
            status["offline"] = f"error: {err}"
        healthy = status["redis"] == "ok" and not status["offline"].startswith("error")
        return JSONResponse(status, status_code=200 if healthy else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    def prometheus(request: Request) -> Response:
        if (refused := lacks(request, "read")) is not None:
            return refused
        try:
            for view in store.definitions.views:
                stamp = store.online.pushed_stamp(view)
                if stamp is not None:
                    stamp_age.labels(view).set(time.time() - stamp)
        except Exception:  # noqa: BLE001 - metrics must render even when Redis is down
            redis_errors.inc()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
