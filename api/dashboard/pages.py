"""The dashboard's pages: server-rendered (Jinja2), charts as inline SVG, no JavaScript needed.

Each handler gathers what its page shows from the guard and its lineage store and hands it to a
template; the words come from `words`, the charts from `charts`.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.dashboard import charts, oncall, words
from api.dashboard.auth import COOKIE, COOKIE_AGE_S, DashboardOperator, DashboardReader, caller_of, same_site
from api.routes.lineage import model_calls_seen
from guard import Guard, LineageStore
from guard._timestamps import utc_now
from guard.alerts import Unset, unconfigured
from guard.decisions import Action, ReasonCode
from guard.health import DEFINITION, HealthState, PointHealth
from guard.timeline import block_rate_series, lag_series, reasons_over, sample_times
from guard.watch import Watcher

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(duration=words.duration, when=words.when_html, percent=words.percent)
router = APIRouter(include_in_schema=False)

WINDOWS = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
_ORDER = {HealthState.BREACHED: 0, HealthState.DEGRADED: 1, HealthState.NO_DATA: 2, HealthState.HEALTHY: 3, None: 4}


def _guard(request: Request) -> tuple[Guard, LineageStore]:
    guard: Guard | None = getattr(request.app.state, "guard", None)
    if guard is None or guard.store is None:
        raise HTTPException(503, "the guard is starting: its policy and lineage store are being loaded")
    return guard, guard.store


def _page(request: Request, template: str, caller: Any, **context: Any) -> HTMLResponse:
    guard, _ = _guard(request)
    return templates.TemplateResponse(
        request,
        template,
        {"policy": guard.policy, "caller": caller, "keys": request.app.state.settings.keys_configured,
         "now": utc_now(), "unconfigured": _unconfigured(guard), **context},
    )  # fmt: skip


def _unconfigured(guard: Guard) -> dict[str, Unset]:
    """Alert channels that cannot deliver for want of an environment variable (flagged on every page)."""
    return unconfigured(guard.policy.notify, os.environ)


def _incidents(
    guard: Guard, store: LineageStore, rows: list[dict[str, Any]], now: datetime
) -> list[oncall.IncidentView]:
    latest, missing = store.latest_alerts(), _unconfigured(guard)
    return [
        oncall.incident_view(store, policy=guard.policy, row=row, now=now, latest_alerts=latest, unconfigured=missing)
        for row in rows
    ]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, caller: DashboardReader) -> HTMLResponse:
    """Open incidents first (with Acknowledge), then every integration point as a tile, then recent blocks."""
    guard, store = _guard(request)
    now = utc_now()
    points = guard.health(now)
    latest, missing, states = store.latest_alerts(), _unconfigured(guard), store.point_states()
    incidents = _incidents(guard, store, store.incidents(open_only=True, limit=20), now)
    tiles = [
        {**words.tile(p, now), "since": (states.get((p.source, p.object)) or {}).get("since"),
         "incident": oncall.open_incident_of(incidents, p),
         "contacts": oncall.contacts(guard.policy, p.source, p.object, latest_alerts=latest, unconfigured=missing)}
        for p in sorted(points, key=lambda p: (_ORDER[p.state], p.source, p.object))
    ]  # fmt: skip
    counts = {state: sum(1 for p in points if p.state is state) for state in HealthState}
    tallies = store.minute_tallies(now - timedelta(hours=1), now)
    reasons = sorted(reasons_over(tallies).items(), key=lambda item: -item[1])
    current = {(t["source"], t["object"]): t["sentence"] for t in tiles}
    return _page(
        request, "overview.html", caller,
        tiles=tiles, counts=counts, words_for=words.STATE_WORDS, definition=DEFINITION, incidents=incidents,
        current=current, blocked=store.recent_blocks(10),
        reasons_chart=charts.responsive(lambda width: charts.reason_bars(
            reasons, title="Records blocked or warned in the last hour, by reason", warns=_WARNING_CODES,
            width=width)),
        refresh=60,
    )  # fmt: skip


@router.get("/points/{source}/{obj}", response_class=HTMLResponse)
def point(
    request: Request, caller: DashboardReader, source: str, obj: str, window: Annotated[str, Query()] = "24h"
) -> HTMLResponse:
    """One integration point: lag and block rate over time against the SLA, reasons, writers, blocks."""
    guard, store = _guard(request)
    now = utc_now()
    span = WINDOWS.get(window, WINDOWS["24h"])
    found = [p for p in guard.health(now) if (p.source, p.object) == (source, obj)]
    if not found:
        raise HTTPException(404, f"{source} → {obj} is not an integration point of policy {guard.policy.name}")
    health = found[0]
    start = now - span
    axis = charts.TimeAxis(start, now)  # one time axis for every chart of the page
    point_incidents = [row for row in store.incidents(limit=100) if (row["source"], row["object"]) == (source, obj)]
    spans = [charts.Span(row["started_at"], row["recovered_at"] or now, f"incident {row['id']}", f"#{row['id']}")
             for row in point_incidents]  # fmt: skip
    times = sample_times(start, now, 97)
    lags = lag_series(store.heartbeats_since(start - timedelta(days=7)), (source, obj), times)
    tallies = store.minute_tallies(start, now, (source, obj))
    buckets = block_rate_series(tallies, (source, obj), start, now, 48)
    lag_chart = charts.responsive(lambda width: charts.line_chart(
        charts.Series([s.at for s in lags], [s.value for s in lags]), axis=axis.at(width), spans=spans,
        title=f"Freshness lag of {source} → {obj}",
        describe=f"Time since the newest sync over the last {words.duration(span.total_seconds())}, in UTC; "
        f"the dashed line is the agreed maximum ({words.duration(health.max_lag_s)}); shaded: incidents.",
        objective=health.max_lag_s, objective_label=f"agreed {words.duration(health.max_lag_s)}",
        fmt=words.duration,
    ))  # fmt: skip
    rate_chart = charts.responsive(lambda width: charts.bar_chart(
        [b.start for b in buckets], [b.block_rate for b in buckets], axis=axis.at(width), spans=spans,
        title=f"Share of {source} → {obj} records blocked",
        describe="Blocked records per span, in UTC; the dashed line is the error budget (max_block_rate); "
        "hatched grey: no record checked; shaded: incidents.",
        objective=health.max_block_rate,
        objective_label=f"budget {words.percent(health.max_block_rate)}" if health.max_block_rate is not None else "",
        fmt=words.percent,
    ))  # fmt: skip
    reasons = sorted(reasons_over(tallies, (source, obj)).items(), key=lambda item: -item[1])
    views = _incidents(guard, store, point_incidents, now)
    return _page(
        request, "point.html", caller,
        tile=words.tile(health, now), health=health, window=window, windows=list(WINDOWS), incidents=views,
        contacts=oncall.contacts(guard.policy, source, obj, latest_alerts=store.latest_alerts(),
                                 unconfigured=_unconfigured(guard)),
        lag_chart=lag_chart, rate_chart=rate_chart,
        reasons_chart=charts.responsive(lambda width: charts.reason_bars(
            reasons, title=f"{source} → {obj}: records blocked or warned, by reason", warns=_WARNING_CODES,
            width=width)),
        blocked=store.decisions(action="block", source=source, obj=obj, limit=20), definition=DEFINITION,
        changes=[c for c in store.state_changes_since(start) if (c["source"], c["object"]) == (source, obj)][-20:],
        ago=lambda moment: words.ago(moment, now),
    )  # fmt: skip


@router.get("/incidents", response_class=HTMLResponse)
def incidents(request: Request, caller: DashboardReader) -> HTMLResponse:
    """Open incidents first, then recent ones, with time to recovery against the objective."""
    guard, store = _guard(request)
    now = utc_now()
    views = _incidents(guard, store, store.incidents(limit=100), now)
    views.sort(key=lambda view: (not view.open, -view.row["detected_at"].timestamp()))
    return _page(request, "incidents.html", caller, incidents=views)


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident(request: Request, caller: DashboardReader, incident_id: int) -> HTMLResponse:
    """One incident and its impact: every run and model call that used the point meanwhile."""
    guard, store = _guard(request)
    row = store.incident(incident_id)
    if row is None:
        raise HTTPException(404, f"no incident {incident_id}")
    now = utc_now()
    [view] = _incidents(guard, store, [row], now)
    found = [p for p in guard.health(now) if (p.source, p.object) == (row["source"], row["object"])]
    current = words.situation(found[0], now) if found else None
    return _page(request, "incident.html", caller, incident=view, current=current)


@router.post("/incidents/{incident_id}/acknowledge")
def acknowledge(request: Request, caller: DashboardOperator, incident_id: int) -> Response:
    """Acknowledge from the dashboard, then back to where the button was."""
    _, store = _guard(request)
    if store.acknowledge_incident(incident_id, caller.name, utc_now()) is None:
        raise HTTPException(404, f"no incident {incident_id}")
    back = request.headers.get("referer") or f"/incidents/{incident_id}"
    return RedirectResponse(back, status_code=303)


@router.get("/blocked", response_class=HTMLResponse)
def blocked(
    request: Request,
    caller: DashboardReader,
    *,
    pipeline: str | None = None,
    source: str | None = None,
    obj: Annotated[str | None, Query(alias="object")] = None,
    reason: str | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """Recent blocked records with their reasons in words, filtered by pipeline, source, object and reason."""
    _, store = _guard(request)
    filters = {"pipeline": pipeline or None, "source": source or None, "object": obj or None, "reason": reason or None}
    rows = store.decisions(action="block", pipeline=filters["pipeline"], source=filters["source"],
                           obj=filters["object"], reason=filters["reason"], limit=51,
                           offset=(page - 1) * 50)  # fmt: skip
    query = {name: value for name, value in filters.items() if value}
    pipelines = sorted({r["pipeline"] for r in store.list_runs(limit=200)})
    return _page(
        request, "blocked.html", caller, rows=rows[:50], filters=filters, page=page, more=len(rows) > 50,
        query=urlencode(query), pipelines=pipelines, codes=sorted(code.value for code in _reason_codes()),
    )  # fmt: skip


@router.get("/lineage", response_class=HTMLResponse, response_model=None)
def lineage_search(
    request: Request, caller: DashboardReader, obj: Annotated[str | None, Query(alias="object")] = None,
    key: str | None = None,
) -> Response:  # fmt: skip
    """The lineage explorer's search: an object and a key."""
    if obj and key:
        return RedirectResponse(f"/lineage/{quote(obj, safe='')}/{quote(key, safe='')}", status_code=303)
    _, store = _guard(request)
    return _page(request, "lineage.html", caller, runs=store.list_runs(limit=20))


@router.get("/lineage/{obj}/{key}", response_class=HTMLResponse, response_model=None)
def entity(request: Request, caller: DashboardReader, obj: str, key: str) -> Response:
    """Every run that saw an entity, its decisions, the policy version, and the model calls that consumed it.

    The lookup ignores case: `c-1042` finds `C-1042` (one match: there; several: a choice); nothing found
    offers the keys that contain what was typed.
    """
    _, store = _guard(request)
    history = store.entity_history(obj, key)
    suggestions: list[tuple[str, str]] = []
    if not history:
        suggestions = store.entity_keys(obj, key)
        exact = [found for found in suggestions if found[0].lower() == obj.lower() and found[1].lower() == key.lower()]
        if len(exact) == 1:
            return RedirectResponse(f"/lineage/{quote(exact[0][0], safe='')}/{quote(exact[0][1], safe='')}",
                                    status_code=303)  # fmt: skip
    return _page(request, "entity.html", caller, object=obj, key=key, decisions=list(reversed(history)),
                 calls=model_calls_seen(history), suggestions=suggestions,
                 pruned_before=store.pruned_before().get("records"))  # fmt: skip


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run(request: Request, caller: DashboardReader, run_id: str) -> HTMLResponse:
    """One run: every record it decided, drawn as source → record → run → model call."""
    _, store = _guard(request)
    found = store.get_run(run_id)
    if found is None:
        raise HTTPException(404, f"no run {run_id}")
    return _page(request, "run.html", caller, run=found, graph=_run_graph(found))


@router.get("/policy", response_class=HTMLResponse)
def policy(request: Request, caller: DashboardReader) -> HTMLResponse:
    """The policy in force: sources, objects, owners, replicas, SLAs; and its version history."""
    _, store = _guard(request)
    return _page(request, "policy.html", caller, versions=store.policy_history(50))


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/", error: str = "") -> HTMLResponse:  # noqa: A002 - the query's name
    """Paste an API key (viewer) to read the dashboard."""
    return templates.TemplateResponse(request, "login.html", {"next": _local(next), "error": error, "caller": None,
                                                              "policy": None, "now": utc_now()})  # fmt: skip


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    """Keep a valid key in an HttpOnly cookie and go where the user was going."""
    same_site(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    target = _local((form.get("next") or ["/"])[0])
    caller = caller_of(request, key)
    if caller is None:
        refused = urlencode({"next": target, "error": "That key is not one this service accepts."})
        return RedirectResponse(f"/login?{refused}", status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, key, max_age=COOKIE_AGE_S, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")  # fmt: skip
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the key."""
    same_site(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/evaluate")
def evaluate(request: Request, caller: DashboardOperator) -> Response:
    """Judge every SLA now instead of at the watcher's next round."""
    watcher: Watcher | None = getattr(request.app.state, "watcher", None)
    if watcher is not None:
        watcher.evaluate()
        watcher.deliver()
    return RedirectResponse("/", status_code=303)


def _local(target: str) -> str:
    """Only paths of this site as a redirect target (no open redirect to another host)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _reason_codes() -> list[ReasonCode]:
    return list(ReasonCode)


#: Reason codes that warn (the record still reaches the model) rather than block.
_WARNING_CODES = frozenset(code.value for code in ReasonCode if code.action is Action.WARN)


def _run_graph(found: dict[str, Any]) -> Any:
    """Sources → records → run → model calls; a big run's records are grouped by source, object and decision."""
    decisions = found["decisions"]
    nodes: list[charts.Node] = []
    edges: list[tuple[str, str]] = []
    tones = {"block": "bad", "warn": "warn", "allow": "ok"}
    for source in dict.fromkeys(d["source"] or "(no source)" for d in decisions):
        nodes.append(charts.Node(f"s:{source}", 0, source))
    if len(decisions) <= 12:
        for d in decisions:
            href = (
                f"/lineage/{quote(d['object'], safe='')}/{quote(d['key'], safe='')}"
                if d["object"] and d["key"]
                else None
            )
            label = f"{_ACTION_WORDS[d['action']]}: {d['object'] or '?'} {d['key'] or d['record_id']}"
            nodes.append(charts.Node(f"r:{d['position']}", 1, label, tones[d["action"]], href,
                                     f"from {d['source'] or '(no source)'}"))  # fmt: skip
            edges += [(f"s:{d['source'] or '(no source)'}", f"r:{d['position']}"), (f"r:{d['position']}", "run")]
    else:
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for d in decisions:
            groups.setdefault((d["source"] or "(no source)", d["object"] or "?", d["action"]), []).append(d)
        for index, ((source, obj, action), members) in enumerate(groups.items()):
            codes = sorted({code for d in members for code in d["reasons"]})
            why = f" ({', '.join(codes[:2])})" if codes else ""
            label = f"{len(members)} {obj} {_ACTION_WORDS[action]}{why}"
            nodes.append(charts.Node(f"g:{index}", 1, label, tones[action], detail=f"from {source}"))
            edges += [(f"s:{source}", f"g:{index}"), (f"g:{index}", "run")]
    nodes.append(charts.Node("run", 2, f"run {found['run_id'][:8]}: {found['verdict']}"))
    for index, call in enumerate(found["model_calls"]):
        nodes.append(charts.Node(f"m:{index}", 3, f"{call['model']} {call['call_id'] or ''}".strip()))
        edges.append(("run", f"m:{index}"))
    title = f"Run {found['run_id']}: sources, records, the run and the model calls it fed"
    return charts.lineage_graph(nodes, edges, title=title, columns=["source", "records", "run", "model call"])


_ACTION_WORDS = {"allow": "allowed", "warn": "warned", "block": "blocked"}


def lag_words(health: PointHealth) -> str:
    """The lag and where it comes from, for the point page."""
    if health.lag_s is None:
        return "unknown: no sync reported and no record checked"
    origin = (
        "the stalest writer's newest sync" if health.lag_from == "heartbeats" else "the records' 95th percentile age"
    )
    return f"{words.duration(health.lag_s)} (from {origin})"


templates.env.globals["lag_words"] = lag_words
