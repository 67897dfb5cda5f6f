"""Datasette with the real metadata.yml: every page answers, every report tells the truth.

Each report's figures are checked against an independent computation in pandas
over the raw rows of a demo database (never against the report's own SQL).
"""

from __future__ import annotations

import math
import re
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from datasette.app import Datasette
from datasette_dashboards import replace_opts_in_query

from orchestrator.reports.canned import (
    fill_report_queries,
    load_metadata,
    metadata_for,
    reports,
    run_report,
    run_report_args,
)

# demo_db (shared, read-only) and empty_db come from conftest.py.


def datasette_for(path: Path) -> Datasette:
    return Datasette([str(path)], metadata=metadata_for(path.stem))


async def get_json(ds: Datasette, path: str, **params: Any) -> Any:
    query = urllib.parse.urlencode({**params, "_shape": "array"})
    response = await ds.client.get(f"{path}?{query}")
    assert response.status_code == 200, (path, params, response.text[:500])
    return response.json()


def frame(path: Path, sql: str) -> pd.DataFrame:
    conn = sqlite3.connect(path)
    try:
        return pd.read_sql_query(sql, conn)
    finally:
        conn.close()


def tables(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    return names


def dashboard_charts() -> dict[str, dict[str, Any]]:
    # A panel that names a report gets its SQL, as the plugin fills it in.
    dashboards = fill_report_queries(load_metadata())["plugins"]["datasette-dashboards"]
    return {
        f"{dashboard}/{name}": chart
        for dashboard, spec in dashboards.items()
        for name, chart in spec["charts"].items()
        if "query" in chart
    }


FILTERS = [
    {},
    {
        "start": "2026-10-20",
        "end": "2026-11-10",
        "orchestrator": "plan_build",
        "model": "claude-sonnet-4-5",
    },
]


@pytest.fixture(scope="module")
def window(demo_db: Path) -> dict[str, str]:
    """A start and end that cover every timestamp of the demo history, read from raw rows."""
    days = pd.concat(
        frame(demo_db, f"SELECT substr({column}, 1, 10) AS day FROM {table}")["day"]
        for table, column in [
            ("agents", "created_at"),
            ("agents", "completed_at"),
            ("prompts", "created_at"),
            ("agent_logs", "created_at"),
            ("system_logs", "created_at"),
        ]
    ).dropna()
    return {"start": days.min(), "end": days.max()}


# -- every page answers, on a demo database and on an empty one ---------------------------


@pytest.mark.parametrize("which", ["demo", "empty"])
async def test_every_page_report_and_chart_answers(
    which: str, demo_db: Path, empty_db: Path, window: dict[str, str]
) -> None:
    path = demo_db if which == "demo" else empty_db
    ds = datasette_for(path)
    for page in ["/", "/orchestrator", "/-/dashboards", "/-/dashboards/overview"]:
        response = await ds.client.get(page)
        assert response.status_code == 200, page
    for table in tables(path):
        response = await ds.client.get(f"/orchestrator/{table}")
        assert response.status_code == 200, table
    for name in reports():
        await get_json(ds, f"/orchestrator/{name}.json")
        await get_json(
            ds,
            f"/orchestrator/{name}.json",
            **window,
        )
    for key, chart in dashboard_charts().items():
        response = await ds.client.get(f"/-/dashboards/{key}")
        assert response.status_code == 200, key
        for filters in FILTERS:
            sql = replace_opts_in_query(chart["query"], filters)
            used = {k: v for k, v in filters.items() if f":{k}" in sql}
            await get_json(ds, "/orchestrator.json", sql=sql, **used)


async def test_home_page_points_newcomers_to_reports_and_dashboards(demo_db: Path) -> None:
    html = (await datasette_for(demo_db).client.get("/")).text
    assert "/-/dashboards/overview" in html and "orchestrator report" in html


async def test_full_text_search_on_prompts_and_logs(demo_db: Path) -> None:
    ds = datasette_for(demo_db)
    found = await get_json(ds, "/orchestrator/prompts.json", _search="README")
    raw = frame(
        demo_db, "SELECT id FROM prompts WHERE content LIKE '%README%' OR response LIKE '%README%'"
    )
    assert {row["id"] for row in found} == set(raw["id"]) and len(raw) > 0
    logs = await get_json(ds, "/orchestrator/agent_logs.json", _search="pytest")
    assert logs and all("pytest" in row["message"] for row in logs)


async def test_anonymous_visitors_cannot_write(demo_db: Path) -> None:
    ds = datasette_for(demo_db)
    before = frame(demo_db, "SELECT count(*) AS n FROM prompts")["n"][0]
    response = await ds.client.get(
        "/orchestrator.json", params={"sql": "DELETE FROM prompts", "_shape": "array"}
    )
    assert response.status_code == 400  # Datasette only runs read-only SQL
    assert frame(demo_db, "SELECT count(*) AS n FROM prompts")["n"][0] == before
    # Report parameters are bound: a quote in a parameter is data, not SQL.
    rows = await get_json(ds, "/orchestrator/run_timeline.json", agent_id="x' OR '1'='1")
    assert rows == []


# -- each report's figures equal an independent computation -----------------------------


@pytest.fixture(scope="module")
def raw(demo_db: Path) -> dict[str, pd.DataFrame]:
    prompts = frame(demo_db, "SELECT * FROM prompts")
    agents = frame(demo_db, "SELECT * FROM agents")
    orchestrators = frame(
        demo_db,
        "SELECT id AS orchestrator_agent_id, name AS orchestrator_agent FROM orchestrator_agents",
    )
    agents = agents.merge(orchestrators, on="orchestrator_agent_id")
    prompts = prompts.merge(
        agents[["id", "orchestrator_agent", "session_id", "name"]].rename(
            columns={"id": "agent_id", "name": "run"}
        ),
        on="agent_id",
    )
    prompts["day"] = prompts["created_at"].str[:10]
    agents["day"] = agents["created_at"].str[:10]
    logs = frame(
        demo_db, "SELECT agent_id, log_type, step, duration_ms, created_at, message FROM agent_logs"
    )
    system = frame(demo_db, "SELECT * FROM system_logs")
    return {"prompts": prompts, "agents": agents, "logs": logs, "system": system}


async def report(demo_db: Path, name: str, **params: Any) -> pd.DataFrame:
    rows = await get_json(datasette_for(demo_db), f"/orchestrator/{name}.json", **params)
    return pd.DataFrame(rows)


TOKENS = ["tokens_input", "tokens_output", "tokens_cache_read", "tokens_cache_write"]


async def test_spend_by_day(
    demo_db: Path, raw: dict[str, pd.DataFrame], window: dict[str, str]
) -> None:
    got = (await report(demo_db, "spend_by_day", **window)).set_index("day")
    p = raw["prompts"]
    expected = p.groupby("day").agg(
        prompts=("id", "size"), cost_usd=("cost_usd", "sum"), **{t: (t, "sum") for t in TOKENS}
    )
    assert list(got.index) == sorted(expected.index)
    assert (got["prompts"] == expected["prompts"]).all()
    for token in TOKENS:
        assert (got[token] == expected[token]).all()
    assert got["cost_usd"].to_numpy() == pytest.approx(expected["cost_usd"].to_numpy(), abs=1e-4)
    unpriced = p[p["cost_source"] == "unpriced"].groupby("day").size()
    assert got["unpriced_prompts"].sum() == unpriced.sum() > 0


async def test_spend_by_model_never_prices_unknown_models_at_zero(
    demo_db: Path, raw: dict[str, pd.DataFrame], window: dict[str, str]
) -> None:
    got = (await report(demo_db, "spend_by_model", **window)).set_index("model")
    p = raw["prompts"]
    for model, group in p.groupby("model"):
        row = got.loc[model]
        assert row["prompts"] == len(group)
        assert row["tokens_cache_read"] == group["tokens_cache_read"].sum()
        if group["cost_usd"].isna().all():
            assert row["cost_usd"] is None or math.isnan(row["cost_usd"])
            assert row["unpriced_prompts"] == len(group)
        else:
            assert row["cost_usd"] == pytest.approx(group["cost_usd"].sum(), abs=1e-4)


async def test_spend_by_orchestrator(
    demo_db: Path, raw: dict[str, pd.DataFrame], window: dict[str, str]
) -> None:
    got = (await report(demo_db, "spend_by_orchestrator", **window)).set_index("orchestrator_agent")
    p, a = raw["prompts"], raw["agents"]
    for name, group in p.groupby("orchestrator_agent"):
        runs = a[a["orchestrator_agent"] == name]
        row = got.loc[name]
        assert row["runs"] == len(runs)
        assert row["failed_runs"] == (runs["status"] == "failed").sum()
        assert row["prompts"] == len(group)
        assert row["cost_usd"] == pytest.approx(group["cost_usd"].sum(), abs=1e-4)
        assert row["usd_per_run"] == pytest.approx(group["cost_usd"].sum() / len(runs), abs=1e-4)


async def test_spend_by_session_and_expensive_prompts(
    demo_db: Path, raw: dict[str, pd.DataFrame], window: dict[str, str]
) -> None:
    got = await report(demo_db, "spend_by_session", limit="5", **window)
    a = raw["agents"]
    by_session = a.groupby("session_id")["total_cost_usd"].sum().sort_values(ascending=False)
    assert list(got["session_id"]) == list(by_session.index[:5])
    assert got["cost_usd"].to_numpy() == pytest.approx(by_session.to_numpy()[:5], abs=1e-4)

    top = await report(demo_db, "expensive_prompts", limit="10", **window)
    costs = raw["prompts"]["cost_usd"].dropna().sort_values(ascending=False)
    assert top["cost_usd"].to_numpy() == pytest.approx(costs.to_numpy()[:10], abs=1e-6)


async def test_token_mix_hit_ratio_and_savings(
    demo_db: Path, raw: dict[str, pd.DataFrame], window: dict[str, str]
) -> None:
    from genai_prices import Usage, calc_price

    got = (await report(demo_db, "token_mix", **window)).set_index("day")
    p = raw["prompts"]
    day = p.groupby("day")[TOKENS].sum()
    ratio = day["tokens_cache_read"] / day[
        ["tokens_input", "tokens_cache_read", "tokens_cache_write"]
    ].sum(axis=1)
    assert got["cache_hit_ratio"].to_numpy() == pytest.approx(ratio.to_numpy(), abs=1e-4)
    # The 1-hour cache writes, a part of all cache writes (the demo writes some).
    one_hour = p.groupby("day")["tokens_cache_write_1h"].sum()
    assert (got["tokens_cache_write_1h"] == one_hour.loc[got.index]).all()
    assert (got["tokens_cache_write_1h"] <= got["tokens_cache_write"]).all()
    assert 0 < got["tokens_cache_write_1h"].sum() < got["tokens_cache_write"].sum()

    # Savings, priced independently with genai-prices: the same calls without caching.
    def saving(row: pd.Series) -> float:
        if pd.isna(row["cost_usd"]):
            return 0.0
        total = row["tokens_input"] + row["tokens_cache_read"] + row["tokens_cache_write"]
        cached = calc_price(
            Usage(
                input_tokens=total,
                cache_read_tokens=row["tokens_cache_read"],
                cache_write_tokens=row["tokens_cache_write"],
                cache_write_1h_tokens=row["tokens_cache_write_1h"],
                output_tokens=row["tokens_output"],
            ),
            row["model"],
        )
        uncached = calc_price(
            Usage(input_tokens=total, output_tokens=row["tokens_output"]), row["model"]
        )
        return float(uncached.total_price - cached.total_price)

    sample_day = got.index[len(got) // 2]
    day_rows = p[p["day"] == sample_day]
    assert got.loc[sample_day, "cache_savings_usd"] == pytest.approx(
        sum(saving(row) for _, row in day_rows.iterrows()), abs=1e-3
    )


async def test_failed_slowest_and_over_budget_runs(
    demo_db: Path, raw: dict[str, pd.DataFrame], window: dict[str, str]
) -> None:
    a = raw["agents"]
    failed = await report(demo_db, "failed_runs", limit="500")
    expected = a[a["status"] == "failed"].sort_values("completed_at", ascending=False)
    assert list(failed["agent_id"]) == list(expected["id"])
    assert list(failed["last_error"]) == list(expected["error"])

    slowest = await report(demo_db, "slowest_runs", limit="7", **window)
    assert slowest["duration_ms"].to_numpy() == pytest.approx(
        a["duration_ms"].sort_values(ascending=False).to_numpy()[:7]
    )

    budget = 0.25
    over = await report(demo_db, "runs_over_budget", budget_usd=str(budget), limit="1000")
    assert set(over["agent_id"]) == set(a[a["total_cost_usd"] > budget]["id"])
    # and the run totals themselves equal the sums over each run's prompts
    per_run = raw["prompts"].groupby("agent_id")["cost_usd"].sum()
    totals = a.set_index("id")["total_cost_usd"]
    assert totals[per_run.index].to_numpy() == pytest.approx(per_run.to_numpy(), abs=1e-9)


async def test_step_durations_percentiles_within_their_bucket(
    demo_db: Path, raw: dict[str, pd.DataFrame], window: dict[str, str]
) -> None:
    got = await report(demo_db, "step_durations", **window)
    logs = raw["logs"]
    ends = logs[(logs["log_type"] == "step_end") & logs["step"].notna()].merge(
        raw["agents"][["id", "orchestrator_agent"]].rename(columns={"id": "agent_id"})
    )
    assert len(got) == ends.groupby(["orchestrator_agent", "step"]).ngroups
    for _, row in got.iterrows():
        values = sorted(
            ends[
                (ends["orchestrator_agent"] == row["orchestrator_agent"])
                & (ends["step"] == row["step"])
            ]["duration_ms"]
        )
        n = len(values)
        p50, p95 = values[math.ceil(0.5 * n) - 1], values[math.ceil(0.95 * n) - 1]
        assert row["steps"] == n
        assert row["mean_ms"] == pytest.approx(sum(values) / n, abs=0.06)
        # read from buckets 10% wide: the midpoint is within 5% (0.05 ms of rounding)
        assert abs(row["p50_ms"] - p50) <= 0.05 * p50 + 0.05
        assert abs(row["p95_ms"] - p95) <= 0.05 * p95 + 0.05
        assert row["max_ms"] == values[-1]


async def test_run_timeline_unpriced_models_and_system_problems(
    demo_db: Path, raw: dict[str, pd.DataFrame], window: dict[str, str]
) -> None:
    a, p, logs, system = raw["agents"], raw["prompts"], raw["logs"], raw["system"]
    latest = a.sort_values(["created_at", "id"]).iloc[-1]["id"]
    timeline = await report(demo_db, "run_timeline")
    assert len(timeline) == (logs["agent_id"] == latest).sum() + (p["agent_id"] == latest).sum()
    assert list(timeline["created_at"]) == sorted(timeline["created_at"])

    unpriced = (await report(demo_db, "unpriced_models")).set_index("model")
    expected = p[p["cost_source"] == "unpriced"].groupby("model").size()
    assert unpriced["unpriced_prompts"].to_dict() == expected.to_dict()

    problems = await report(demo_db, "system_problems", **window)
    bad = system[system["log_level"].isin(["ERROR", "WARNING", "CRITICAL"])]
    counts = bad.groupby(["source", "log_level"]).size()
    assert {
        (r["source"], r["log_level"]): r["events"] for _, r in problems.iterrows()
    } == counts.to_dict()


async def test_dashboard_metrics_equal_raw_sums(
    demo_db: Path, raw: dict[str, pd.DataFrame]
) -> None:
    ds = datasette_for(demo_db)
    charts = dashboard_charts()
    p, a = raw["prompts"], raw["agents"]
    filters = FILTERS[1]
    sql = replace_opts_in_query(charts["overview/total-spend"]["query"], filters)
    [row] = await get_json(ds, "/orchestrator.json", sql=sql, **filters)
    chosen = p[
        (p["day"] >= filters["start"])
        & (p["day"] <= filters["end"])
        & (p["orchestrator_agent"] == filters["orchestrator"])
        & (p["model"] == filters["model"])
    ]
    assert row["usd"] == pytest.approx(round(chosen["cost_usd"].sum(), 2), abs=0.006)
    sql = replace_opts_in_query(charts["overview/failure-rate"]["query"], {})
    [row] = await get_json(ds, "/orchestrator.json", sql=sql)
    assert row["failed_pct"] == pytest.approx(100 * (a["status"] == "failed").mean(), abs=0.06)


async def test_usage_by_day_and_runs_by_day(demo_db: Path, raw: dict[str, pd.DataFrame]) -> None:
    p, a = raw["prompts"], raw["agents"]
    got = (await report(demo_db, "usage_by_day")).set_index(["day", "orchestrator_agent", "model"])
    p = p.assign(
        model=p["model"].fillna("unknown"),
        failed=p["status"] == "failed",
        unpriced=p["cost_source"] == "unpriced",
    )
    expected = p.groupby(["day", "orchestrator_agent", "model"]).agg(
        prompts=("id", "size"),
        failed_prompts=("failed", "sum"),
        cost_usd=("cost_usd", "sum"),
        cache_savings_usd=("cache_savings_usd", "sum"),
        unpriced_prompts=("unpriced", "sum"),
        **{t: (t, "sum") for t in TOKENS},
    )
    assert list(got.index) == list(expected.index)  # sorted by day, workflow, model
    for column in ["prompts", "failed_prompts", "unpriced_prompts", *TOKENS]:
        assert got[column].tolist() == expected[column].tolist(), column
    for column in ["cost_usd", "cache_savings_usd"]:
        assert np.allclose(got[column], expected[column], atol=1e-9), column
    assert expected["failed_prompts"].sum() > 0 and expected["unpriced_prompts"].sum() > 0

    runs = (await report(demo_db, "runs_by_day")).set_index(["day", "orchestrator_agent"])
    outcome = pd.get_dummies(a["status"]).reindex(
        columns=["completed", "failed", "cancelled"], fill_value=False
    )
    by_day = (
        pd.concat([a[["day", "orchestrator_agent"]], outcome.astype(int)], axis=1)
        .assign(runs=1)
        .groupby(["day", "orchestrator_agent"])[["runs", "completed", "failed", "cancelled"]]
        .sum()
    )
    assert list(runs.index) == list(by_day.index)
    assert runs[by_day.columns].to_numpy().tolist() == by_day.to_numpy().tolist()


async def test_runs_lists_every_run_newest_first(
    demo_db: Path, raw: dict[str, pd.DataFrame]
) -> None:
    a = raw["agents"].sort_values(["created_at", "id"], ascending=False)
    got = await report(demo_db, "runs")
    assert 0 < len(a) <= 1000  # Datasette returns at most 1000 rows
    assert list(got["agent_id"]) == list(a["id"])
    assert got["run"].tolist() == a["name"].tolist()
    assert got["orchestrator_agent"].tolist() == a["orchestrator_agent"].tolist()
    assert got["status"].tolist() == a["status"].tolist()
    assert np.allclose(got["cost_usd"], a["total_cost_usd"])
    assert np.allclose(got["duration_ms"], a["duration_ms"], equal_nan=True)
    # a window is of the days the runs started
    middle = sorted(a["day"].unique())[len(a["day"].unique()) // 2]
    one_day = await report(demo_db, "runs", start=middle, end=middle)
    assert sorted(one_day["agent_id"]) == sorted(a.loc[a["day"] == middle, "id"])


async def test_latest_sessions_and_one_sessions_runs_and_prompts(
    demo_db: Path, raw: dict[str, pd.DataFrame]
) -> None:
    a, p = raw["agents"], raw["prompts"]
    with_session = a[a["session_id"].notna()].sort_values(["created_at", "id"])
    last_runs = with_session.groupby("session_id").tail(1).iloc[::-1]  # newest first
    got = await report(demo_db, "latest_sessions", limit="10")
    assert list(got["session_id"]) == list(last_runs["session_id"][:10])
    assert list(got["agent_id"]) == list(last_runs["id"][:10])
    totals = a.groupby("session_id").agg(runs=("id", "size"), cost=("total_cost_usd", "sum"))
    assert got["runs"].tolist() == totals.loc[got["session_id"], "runs"].tolist()
    assert np.allclose(got["cost_usd"], totals.loc[got["session_id"], "cost"], atol=1e-4)

    # By default, the latest session; else the one asked for (here the costliest).
    costliest = str(totals["cost"].idxmax())
    for asked, session in [
        ({}, last_runs["session_id"].iloc[0]),
        ({"session_id": costliest}, costliest),
    ]:
        runs = await report(demo_db, "session_runs", **asked)
        expected = a[a["session_id"] == session].sort_values(["created_at", "id"])
        assert list(runs["agent_id"]) == list(expected["id"])
        assert (
            runs["tokens"].tolist() == expected[[f"total_{t}" for t in TOKENS]].sum(axis=1).tolist()
        )
        prompts = await report(demo_db, "session_prompts", **asked)
        sent = p[p["session_id"] == session].sort_values(["created_at", "id"])
        assert list(prompts["prompt_id"]) == list(sent["id"]) and len(sent) > 0
        assert prompts["cost_usd"].sum() == pytest.approx(sent["cost_usd"].sum())


# -- every report takes the same date window -----------------------------------------------

# Any name that reads as a date or a bound of a date range.
DATE_LIKE = re.compile(r"(^|_)(since|until|from|to|day|date|start|end|begin|after|before|at)($|_)")


def test_every_report_takes_start_and_end_and_no_other_date_parameter() -> None:
    for name, item in reports().items():
        assert {"start", "end"} <= set(item.parameters), name
        others = [p for p in item.parameters if p not in ("start", "end") and DATE_LIKE.search(p)]
        assert others == [], name


async def test_no_start_or_end_is_all_time(demo_db: Path, window: dict[str, str]) -> None:
    before = (pd.Timestamp(window["start"]) - pd.Timedelta(days=1)).date().isoformat()
    after = (pd.Timestamp(window["end"]) + pd.Timedelta(days=1)).date().isoformat()
    ds = datasette_for(demo_db)
    for name in reports():
        url = f"/orchestrator/{name}.json"
        missing = await get_json(ds, url)
        assert missing == await get_json(ds, url, start="", end=""), name
        assert missing == await get_json(ds, url, **window), name
        assert missing == await get_json(ds, url, start=window["start"]), name
        assert missing == await get_json(ds, url, end=window["end"]), name
        # and each bound is applied: a window next to the history holds nothing
        assert await get_json(ds, url, end=before) == [], name
        assert await get_json(ds, url, start=after) == [], name
    assert await get_json(ds, "/orchestrator/spend_by_day.json")  # all time is not nothing


def test_report_parameters_as_the_command_line_gives_them(demo_db: Path) -> None:
    expected = run_report("spend_by_session", demo_db, {"start": "2026-10-01", "limit": "3"})
    assert len(expected.rows) == 3
    for args, pairs in [
        (["--start", "2026-10-01", "--limit", "3"], []),
        (["--start=2026-10-01", "--limit=3"], []),
        ([], [("start", "2026-10-01"), ("limit", "3")]),
        (["--limit", "3"], [("start", "2026-10-01"), ("limit", "99")]),  # words win over -p
    ]:
        got = run_report_args("spend_by_session", args, params=pairs, db_path=demo_db)
        assert got == expected, (args, pairs)
    for args, message in [
        (["--start"], "expected --parameter value, got '--start'"),
        (["start", "2026-10-01"], "expected --parameter value, got 'start'"),
        (["--start", "2026-13-01"], "start must be a UTC day"),
        (["--end", "yesterday"], "end must be a UTC day"),
        (["--since", "2026-10-01"], "not ['since']"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            run_report_args("spend_by_session", args, db_path=demo_db)
