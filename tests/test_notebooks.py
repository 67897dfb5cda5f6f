"""The notebooks run top to bottom (on a demo and an empty database) and render offline;
``orchestrator.reports.analysis`` agrees with pandas computations over the raw rows."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from orchestrator.reports import analysis
from orchestrator.reports.notebooks import NOTEBOOKS_DIR, execute_notebook, render_notebook

pytestmark = pytest.mark.notebooks

RUN_HISTORY = NOTEBOOKS_DIR / "run_history.ipynb"
SESSION_DRILLDOWN = NOTEBOOKS_DIR / "session_drilldown.ipynb"
PLOTLY_JSON = "application/vnd.plotly.v1+json"
CHROMIUM = Path("/usr/bin/chromium")
# A script loaded from anywhere but this page: <script src="http...">, or a module import.
EXTERNAL_SCRIPT = re.compile(
    r"<script[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//|import\s*\(?\s*[\"'](?:https?:)?//", re.I
)


# demo_db (shared, read-only) and empty_db come from conftest.py.


def raw(db: Path, sql: str) -> pd.DataFrame:
    """Raw rows, no aggregation: the independent side of every comparison."""
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query(sql, conn)


@pytest.fixture(scope="module")
def agents(demo_db: Path) -> pd.DataFrame:
    return raw(
        demo_db,
        "SELECT a.*, o.name AS workflow FROM agents a "
        "JOIN orchestrator_agents o ON o.id = a.orchestrator_agent_id",
    )


@pytest.fixture(scope="module")
def prompts(demo_db: Path, agents: pd.DataFrame) -> pd.DataFrame:
    frame = raw(demo_db, "SELECT * FROM prompts")
    return frame.merge(
        agents[["id", "workflow", "session_id"]].rename(columns={"id": "agent_id"}),
        on="agent_id",
    )


def outputs(nb: Any) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def text_of(nb: Any) -> str:
    parts = []
    for output in outputs(nb):
        data = output.get("data", {})
        parts.append(str(data.get("text/markdown", "")) + str(data.get("text/plain", "")))
        parts.append(str(output.get("text", "")))
    return "\n".join(parts)


# --- the notebooks -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_history_html(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_notebook(RUN_HISTORY, demo_db, tmp_path_factory.mktemp("html") / "rh.html")


def test_run_history_renders_offline_html(run_history_html: Path, prompts: pd.DataFrame) -> None:
    html = run_history_html.read_text(encoding="utf-8")
    assert not EXTERNAL_SCRIPT.search(html), EXTERNAL_SCRIPT.search(html)
    assert "cdn.plot.ly/plotly" not in html
    assert html.count("Plotly.newPlot(") >= 10  # every chart drawn
    assert "/**\n* plotly.js v" in html  # the library itself, inlined once
    first_day = prompts["created_at"].min()[:10]
    assert f"prompts from <strong>{first_day}</strong>" in html  # said in the first cell
    assert "Traceback" not in html


def test_rendered_html_draws_every_chart_offline_in_a_browser(run_history_html: Path) -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: apt-get install chromium"
        if os.environ.get("ORCHESTRATOR_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    html = run_history_html.read_text(encoding="utf-8")
    external: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))

            def route(route: Any) -> None:
                if route.request.url.startswith(("file:", "data:", "blob:")):
                    route.continue_()
                else:
                    external.append(route.request.url)
                    route.abort()

            page.route("**/*", route)
            page.goto(run_history_html.as_uri())
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot').length >= "
                f"{html.count('Plotly.newPlot(')}",
                timeout=20_000,
            )
            drawn = page.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg').length")
        finally:
            browser.close()
    assert external == [] and errors == []
    assert drawn >= 10


def test_session_drilldown_on_demo(demo_db: Path, agents: pd.DataFrame) -> None:
    # Not the latest session (the default): the parameter must reach the kernel.
    costs = agents.groupby("session_id")["total_cost_usd"].sum()
    wanted = str(costs.idxmax())
    nb = execute_notebook(SESSION_DRILLDOWN, demo_db, parameters={"SESSION_ID": wanted})
    shown = text_of(nb)
    assert f"Session **`{wanted}`**" in shown
    figures = [o["data"][PLOTLY_JSON] for o in outputs(nb) if PLOTLY_JSON in o.get("data", {})]
    assert len(figures) == 4  # timeline, tokens, cost, tools
    steps = agents[agents["session_id"] == wanted]
    assert f"{len(steps)} run(s)" in shown


@pytest.mark.parametrize("notebook", [RUN_HISTORY, SESSION_DRILLDOWN], ids=lambda p: p.stem)
def test_notebooks_say_plainly_when_empty(notebook: Path, empty_db: Path) -> None:
    nb = execute_notebook(notebook, empty_db)  # raises if any cell fails
    assert "No data yet: the database" in text_of(nb)
    assert "is empty** (no runs recorded)" in text_of(nb)
    assert not [o for o in outputs(nb) if PLOTLY_JSON in o.get("data", {})]


def test_notebooks_are_committed_without_outputs() -> None:
    import nbformat

    for path in (RUN_HISTORY, SESSION_DRILLDOWN):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path
        assert any("parameters" in c.metadata.get("tags", []) for c in code), path
        # Notebooks import the package; SQL lives in metadata.yml and orchestrator.reports.analysis.
        assert not re.search(r"\bSELECT\b|sqlite3", "\n".join(c.source for c in code)), path


# --- orchestrator.reports.analysis against pandas over the raw rows -----------------------------


def test_spend_over_time_matches_raw_prompts(demo_db: Path, prompts: pd.DataFrame) -> None:
    prompts = prompts.assign(day=pd.to_datetime(prompts["created_at"].str.slice(0, 10)))
    for by, column in [("orchestrator_agent", "workflow"), ("model", "model")]:
        expected = prompts.groupby(["day", column])["cost_usd"].sum(min_count=0).fillna(0)
        got = analysis.spend_over_time(demo_db, by=by).set_index(["day", by])["cost_usd"]
        got.index.names = expected.index.names
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), atol=1e-9)


def test_failure_rates_match_raw_runs(demo_db: Path, agents: pd.DataFrame) -> None:
    days = pd.to_datetime(agents["created_at"].str.slice(0, 10))
    week = days.dt.to_period("W-SUN").dt.start_time  # weeks Monday to Sunday
    failed = (agents["status"] == "failed").astype(int)
    expected = failed.groupby([week, agents["workflow"]]).agg(["size", "sum"])
    got = analysis.failure_rates(demo_db).set_index(["period", "orchestrator_agent"])
    assert got["runs"].tolist() == expected["size"].tolist()
    assert got["failed"].tolist() == expected["sum"].tolist()
    assert np.allclose(got["failure_rate"], expected["sum"] / expected["size"])
    assert failed.sum() > 0


def test_run_durations_match_numpy_percentiles(demo_db: Path, agents: pd.DataFrame) -> None:
    done = agents[(agents["status"] == "completed") & agents["duration_ms"].notna()]
    got = analysis.run_durations(demo_db).set_index(["orchestrator_agent", "run"])
    assert len(got) == done.groupby(["workflow", "name"]).ngroups
    for (workflow, name), group in done.groupby(["workflow", "name"]):
        row = got.loc[(workflow, name)]
        values = group["duration_ms"].to_numpy()
        assert row["runs"] == len(values)
        assert row["mean_ms"] == pytest.approx(values.mean())
        for p in (5, 25, 50, 75, 95):
            # nearest rank: the smallest value with at least p% of the values at or below it
            assert row[f"p{p}_ms"] == np.percentile(values, p, method="inverted_cdf")


def test_cost_anomalies_match_robust_z_in_pandas(demo_db: Path, agents: pd.DataFrame) -> None:
    runs = agents[(agents["total_cost_usd"] > 0) & agents["completed_at"].notna()].copy()
    runs["x"] = np.log(runs["total_cost_usd"])
    groups = runs.groupby(["workflow", "name"])["x"]
    median = groups.transform("median")
    mad = (runs["x"] - median).abs().groupby([runs["workflow"], runs["name"]]).transform("median")
    runs["z"] = 0.6745 * (runs["x"] - median) / mad
    # The demo's costs are tame: a low threshold gives a list worth comparing.
    expected = runs[(runs["z"] > 1.5) & (groups.transform("size") >= 5)]
    got = analysis.cost_anomalies(demo_db, threshold=1.5, min_runs=5, limit=10_000)
    assert len(expected) > 5
    assert set(got["agent_id"]) == set(expected["id"])
    z = expected.set_index("id")["z"]
    assert np.allclose(got["robust_z"], z.loc[got["agent_id"]].to_numpy())
    assert got["robust_z"].is_monotonic_decreasing
    typical = np.exp(median).groupby(runs["id"]).first()
    assert np.allclose(got["typical_usd"], typical.loc[got["agent_id"]].to_numpy())
    # at the defaults (3.5, groups of 20) the same, and no rows is a frame, not an error
    default = runs[(runs["z"] > analysis.ANOMALY_Z) & (groups.transform("size") >= 20)]
    got = analysis.cost_anomalies(demo_db)
    assert set(got["agent_id"] if len(got) else []) == set(default["id"])


def test_week_over_week_matches_raw_rows(
    demo_db: Path, agents: pd.DataFrame, prompts: pd.DataFrame
) -> None:
    got = analysis.week_over_week(demo_db).set_index("orchestrator_agent")
    last = date.fromisoformat(prompts["created_at"].max()[:10])
    for suffix, first, final in [
        ("this_week", last - timedelta(days=6), last),
        ("last_week", last - timedelta(days=13), last - timedelta(days=7)),
    ]:
        day = prompts["created_at"].str.slice(0, 10)
        sent = prompts[(day >= first.isoformat()) & (day <= final.isoformat())]
        run_day = agents["created_at"].str.slice(0, 10)
        started = agents[(run_day >= first.isoformat()) & (run_day <= final.isoformat())]
        cost = sent.groupby("workflow")["cost_usd"].sum()
        runs = started.groupby("workflow").size()
        for workflow in got.index.drop("(all)"):
            assert got.loc[workflow, f"cost_usd_{suffix}"] == pytest.approx(
                cost.get(workflow, 0), abs=1e-4
            )
            assert got.loc[workflow, f"runs_{suffix}"] == runs.get(workflow, 0)
        assert got.loc["(all)", f"runs_{suffix}"] == len(started)
        assert got.loc["(all)", f"cost_usd_{suffix}"] == pytest.approx(
            sent["cost_usd"].sum(), abs=1e-3
        )


def test_common_errors_match_raw_failed_runs(demo_db: Path, agents: pd.DataFrame) -> None:
    failed = agents[agents["status"] == "failed"]
    kinds = failed["error"].str.split(":").str[0].value_counts()
    got = analysis.common_errors(demo_db, limit=100).set_index("error_kind")["runs"]
    assert got.to_dict() == kinds.to_dict()
    assert got.sum() == len(failed) > 0


def test_error_kind() -> None:
    assert analysis.error_kind("RateLimitError: 429 rate_limit_error") == "RateLimitError"
    assert analysis.error_kind("git push failed: rejected") == "git push failed: rejected"
    assert analysis.error_kind(None) == "(no error recorded)"


def test_session_drilldown_matches_raw_rows(demo_db: Path, agents: pd.DataFrame) -> None:
    latest = agents.sort_values(["created_at", "id"]).iloc[-1]["session_id"]
    failed_session = agents[agents["status"] == "failed"].iloc[0]["session_id"]
    for session_id in (None, failed_session):
        drill = analysis.session_drilldown(session_id, demo_db)
        wanted = latest if session_id is None else session_id
        assert drill.session_id == wanted
        runs = agents[agents["session_id"] == wanted]
        ids = "', '".join(runs["id"])
        logs = raw(demo_db, f"SELECT * FROM agent_logs WHERE agent_id IN ('{ids}')")
        prompts = raw(demo_db, f"SELECT * FROM prompts WHERE agent_id IN ('{ids}')")
        assert sorted(drill.runs["agent_id"]) == sorted(runs["id"])
        assert len(drill.prompts) == len(prompts)
        assert drill.prompts["cost_usd"].sum() == pytest.approx(prompts["cost_usd"].sum())
        assert drill.prompts["created_at"].is_monotonic_increasing
        tools = logs.loc[logs["log_type"] == "tool_use", "metadata"].map(
            lambda m: json.loads(m)["tool"]
        )
        assert drill.tools.set_index("tool")["uses"].to_dict() == tools.value_counts().to_dict()
        gantt = drill.gantt
        assert (gantt["kind"] == "step").sum() == (logs["log_type"] == "step_start").sum()
        assert gantt["kind"].str.startswith("prompt").sum() == len(prompts)
        assert (gantt["finish"] >= gantt["start"]).all()
        errors = (logs["log_type"] == "error").sum() + (prompts["status"] == "failed").sum()
        assert len(drill.errors) == errors
    assert (drill.errors["source"] == "failed prompt").any()


def test_analysis_on_an_empty_database(empty_db: Path) -> None:
    assert not analysis.has_history(empty_db)
    assert analysis.history_span(empty_db) is None
    assert analysis.latest_session(empty_db) is None
    assert analysis.spend_over_time(empty_db).empty
    assert analysis.failure_rates(empty_db).empty
    assert analysis.common_errors(empty_db).empty
    assert analysis.run_durations(empty_db).empty
    assert analysis.cost_anomalies(empty_db).empty
    assert analysis.week_over_week(empty_db).empty
    with pytest.raises(LookupError):
        analysis.session_drilldown(None, empty_db)


def test_analysis_holds_no_sql() -> None:
    """Report SQL lives in metadata.yml only: analysis reshapes the reports in pandas."""
    source = Path(analysis.__file__).read_text(encoding="utf-8")
    assert not re.search(r"\b(SELECT|FROM|sqlite3)\b", source)
