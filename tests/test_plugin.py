"""The Datasette plugin: plain ``datasette serve`` on an orchestrator database.

In-process tests register the plugin with Datasette's plugin manager, as the entry point
does once the package is installed (the test environment may hold an install from before
the entry point). One test runs the real ``datasette serve`` command with the plugin
loaded from ``--plugins-dir`` (a one-line shim doing the same registration).
``orchestrator serve`` is tested in test_serve.py, the live page in a browser in
test_browser.py.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from datasette import hookimpl
from datasette.app import Datasette
from servers import free_port, http_get, http_status

from orchestrator import DatabaseManager
from orchestrator import datasette_plugin as plugin
from orchestrator.commands.serve import share_metadata
from orchestrator.datasette_plugin import live
from orchestrator.reports.canned import load_metadata, reports
from orchestrator.store import sqlite as backend

ROOT = Path(__file__).resolve().parents[1]
#: The plugin's name in /-/plugins.json: the distribution's when the entry point registered
#: it, the module's when registered by hand.
OURS = ("adw-orchestrator", "orchestrator.datasette_plugin")
SHIM = """\
# Registers the orchestrator plugin as its entry point does once the package is installed.
from datasette.plugins import pm
import orchestrator.datasette_plugin as plugin
if not pm.is_registered(plugin):
    pm.register(plugin, name="orchestrator")
"""


pytestmark = pytest.mark.usefixtures("registered_plugin")


@pytest.fixture
def my_db(tmp_path: Path) -> Path:
    """An orchestrator database under another name than metadata.yml's."""
    path = tmp_path / "my.db"
    backend.connect(path).close()
    return path


@pytest.fixture
def foreign_db(tmp_path: Path) -> Path:
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE things (name TEXT)")
    conn.execute("CREATE TABLE _sqlite_migrations (migration_set TEXT, name TEXT)")
    conn.execute("INSERT INTO _sqlite_migrations VALUES ('someone-else', 'm001')")
    conn.commit()
    conn.close()
    return path


async def get(ds: Datasette, path: str, **options: Any) -> Any:
    response = await ds.client.get(path, **options)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return response


async def queries(ds: Datasette, database: str) -> list[str]:
    response = await get(ds, f"/{database}.json")
    return [query["name"] for query in response.json()["queries"]]


async def test_a_database_under_any_name_gets_the_reports_and_dashboard(my_db: Path) -> None:
    ds = Datasette([str(my_db)])
    assert await queries(ds, "my") == list(reports())
    expected = load_metadata()
    home = (await get(ds, "/")).text
    assert expected["title"] in home and 'href="/my"' in home and 'href="/orchestrator"' not in home
    assert 'href="/-/live"' in home  # the menu link
    dashboard = load_metadata()["plugins"]["datasette-dashboards"]["overview"]
    page = (await get(ds, "/-/dashboards/overview")).text
    assert dashboard["title"] in page
    for slug in dashboard["charts"]:
        await get(ds, f"/-/dashboards/overview/{slug}")
    prompts = (await get(ds, "/my/prompts")).text
    table_docs = expected["databases"]["orchestrator"]["tables"]["prompts"]["description"]
    assert table_docs.split(":")[0] in prompts
    report = await get(ds, "/my/spend_by_day.json?_shape=array")
    assert report.json() == []  # an empty database: the report runs and finds nothing


async def test_a_database_without_the_schema_is_left_alone(
    my_db: Path, foreign_db: Path, tmp_path: Path
) -> None:
    ds = Datasette([str(my_db), str(foreign_db)])
    assert await queries(ds, "foreign") == []
    metadata = (await get(ds, "/-/metadata.json")).json()
    assert set(metadata["databases"]) == {"my"}

    alone = Datasette([str(foreign_db)])
    assert (await get(alone, "/-/metadata.json")).json() == {}
    assert (await alone.client.get("/-/live")).status_code == 404
    assert (await alone.client.get("/-/dashboards/overview")).status_code == 404
    assert 'href="/-/live"' not in (await get(alone, "/")).text


async def test_a_database_given_the_schema_later_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "later.db"
    sqlite3.connect(path).close()
    monkeypatch.setattr(plugin.metadata, "RECHECK_S", 0.0)
    ds = Datasette([str(path)])
    assert await queries(ds, "later") == []
    backend.connect(path).close()  # orchestrator init, while Datasette runs
    assert await queries(ds, "later") == list(reports())


async def test_a_database_added_while_serving_is_found_at_once(my_db: Path, tmp_path: Path) -> None:
    from datasette.database import Database

    ds = Datasette([str(my_db)])
    assert await queries(ds, "my") == list(reports())  # the plugin has looked at "my"
    added = tmp_path / "added.db"
    backend.connect(added).close()
    ds.add_database(Database(ds, path=str(added)), name="added")
    assert await queries(ds, "added") == list(reports())
    ds.remove_database("added")
    assert set((await get(ds, "/-/metadata.json")).json()["databases"]) == {"my"}


async def test_two_orchestrator_databases_get_a_dashboard_each(tmp_path: Path) -> None:
    paths = [tmp_path / "alpha.db", tmp_path / "beta.db"]
    for path in paths:
        backend.connect(path).close()
    ds = Datasette([str(path) for path in paths])
    assert await queries(ds, "alpha") == await queries(ds, "beta") == list(reports())
    config = ds.plugin_config("datasette-dashboards")
    assert set(config) == {"overview", "overview-beta"}
    dbs = {slug: {c["db"] for c in spec["charts"].values()} for slug, spec in config.items()}
    assert dbs == {"overview": {"alpha"}, "overview-beta": {"beta"}}
    await get(ds, "/-/dashboards/overview-beta")


async def test_metadata_given_with_m_wins_and_nothing_doubles(my_db: Path) -> None:
    mine = {"title": "Mine", "databases": {"my": {"queries": {"mine": "select 1"}}}}
    ds = Datasette([str(my_db)], metadata=mine)
    assert "<title>Mine" in (await get(ds, "/")).text
    assert await queries(ds, "my") == [*reports(), "mine"]
    # orchestrator serve's old way: the whole metadata.yml with -m as well as the plugin.
    both = Datasette([str(my_db)], metadata=plugin.plugin_metadata(["my"]))
    assert await queries(both, "my") == list(reports())
    assert list(both.plugin_config("datasette-dashboards")) == ["overview"]
    plugins = (await get(both, "/-/plugins.json")).json()
    assert len([p for p in plugins if p["name"] in OURS]) == 1


async def test_the_plugin_grants_no_permission(my_db: Path) -> None:
    assert load_metadata()["allow_sql"] is True  # metadata.yml says so; the plugin does not
    ds = Datasette([str(my_db)], settings={"default_allow_sql": False})
    response = await ds.client.get("/my.json?sql=select+1")
    assert response.status_code == 403
    assert "allow_sql" not in (await get(ds, "/-/metadata.json")).json()


async def test_what_the_plugin_hands_out_is_a_copy(my_db: Path) -> None:
    ds = Datasette([str(my_db)])
    given = plugin.get_metadata(ds, "queries")
    given["databases"]["my"]["queries"].clear()
    given = plugin.get_metadata(ds, None)
    given["plugins"]["datasette-dashboards"].clear()
    assert await queries(ds, "my") == list(reports())
    assert list(ds.plugin_config("datasette-dashboards")) == ["overview"]


async def test_a_table_denied_in_metadata_yml_stays_denied(
    my_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    metadata = load_metadata()
    metadata["databases"]["orchestrator"]["tables"]["prompts"]["allow"] = False
    path = tmp_path / "metadata.yml"
    path.write_text(yaml.safe_dump(metadata), encoding="utf-8")
    monkeypatch.setenv("ORCHESTRATOR_METADATA", str(path))
    ds = Datasette([str(my_db)])
    assert (await ds.client.get("/my/prompts")).status_code == 403
    assert (await ds.client.get("/my/agents")).status_code == 200
    page = await get(ds, "/my")
    assert 'href="/my/agents"' in page.text and 'href="/my/prompts"' not in page.text
    # Datasette deep-copies metadata("tables") per table it checks: it holds the options
    # Datasette reads that way, not every table's documentation.
    tables = plugin.get_metadata(ds, "tables")["databases"]["my"]["tables"]
    assert tables == {"prompts": {"allow": False}}
    assert "description" in ds.table_metadata("my", "agents")


async def test_the_live_page_and_stream_need_the_login_when_shared(my_db: Path) -> None:
    ds = Datasette([str(my_db)], metadata=share_metadata())
    for path in ["/-/live", "/-/live/events", "/my/spend_by_day"]:
        assert (await ds.client.get(path)).status_code == 403, path
    assert 'href="/-/live"' not in (await ds.client.get("/-/login")).text
    cookies = {"ds_actor": ds.sign({"a": {"id": "admin"}}, "actor")}
    page = await get(ds, "/-/live", cookies=cookies)
    assert "Runs in progress" in page.text and "/-/live/events?database=my" in page.text
    script = await get(ds, re.search(r'<script src="([^"]+/live\.js)"', page.text)[1])
    assert "EventSource" in script.text
    # One table hidden from everyone hides the live page too.
    hidden = Datasette(
        [str(my_db)], metadata={"databases": {"my": {"tables": {"prompts": {"allow": False}}}}}
    )
    assert (await hidden.client.get("/-/live")).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/my/failed_runs?start=2026-13-01",
        "/my/spend_by_day.json?start=2026-11-01&end=2026-11-31",
        "/my/spend_by_day.csv?end=yesterday",
        "/-/dashboards/overview?start=2026-13-01&orchestrator=plan_build",
        "/-/dashboards/overview/budgets?start=26-11-01",
    ],
)
async def test_a_report_or_dashboard_refuses_a_window_the_command_line_refuses(
    my_db: Path, path: str
) -> None:
    from click.testing import CliRunner

    from orchestrator.cli import cli

    query = dict(pair.split("=") for pair in path.split("?")[1].split("&"))
    window = ["--start", query.get("start", ""), "--end", query.get("end", "")]
    command = CliRunner().invoke(cli, ["report", "spend_by_day", "--db", str(my_db), *window])
    assert command.exit_code == 1
    said = command.output.strip().removeprefix("Error: ")
    assert "must be a UTC day (YYYY-MM-DD)" in said

    ds = Datasette([str(my_db)])
    response = await ds.client.get(path)
    assert response.status_code == 400, (path, response.status_code)
    if ".json" in path:
        assert response.json()["error"] == said and response.json()["ok"] is False
    elif ".csv" in path:
        assert response.text.strip() == said
    else:  # the page says it, and gives the window back to correct
        shown = re.search(
            r'<p class="message-error orchestrator-bad-window">(.*?)</p>', response.text
        )
        assert shown and html.unescape(shown[1]) == said
        given = re.search(r'name="start" value="([^"]*)"', response.text)
        assert given and html.unescape(given[1]) == query.get("start", "")
    # A good window still runs; under --share the login comes first.
    days = {"start": "2026-11-01", "end": "2026-11-30"}
    good = path.split("?")[0] + "?" + urlencode({k: days.get(k, v) for k, v in query.items()})
    assert (await ds.client.get(good)).status_code == 200, good
    shared = Datasette([str(my_db)], metadata=share_metadata())
    assert (await shared.client.get(path)).status_code == 403
    assert (await ds.client.get("/-/orchestrator/invalid-window")).status_code == 404


class SqlTrace:
    """Every statement run on the connections Datasette opens (a ``prepare_connection``
    plugin setting SQLite's trace callback on each), while registered."""

    __name__ = "sql_trace"  # what Datasette lists a plugin by

    def __init__(self) -> None:
        self.statements: list[str] = []

    @hookimpl
    def prepare_connection(self, conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(self.statements.append)

    def matching(self, word: str) -> list[str]:
        return [sql for sql in self.statements if word in sql.lower()]


@pytest.fixture
def sql_trace() -> Iterator[SqlTrace]:
    from datasette.plugins import pm

    trace = SqlTrace()
    pm.register(trace, name="sql-trace")
    try:
        yield trace
    finally:
        pm.unregister(trace)


async def test_an_anonymous_search_runs_no_sql_when_shared(
    my_db: Path, sql_trace: SqlTrace
) -> None:
    async with DatabaseManager(my_db) as db:
        async with db.agent_run("plan_build", name="plan") as run:
            for i in range(30):
                run.log("tool_use", f"Bash: pytest -k step{i}")
    ds = Datasette([str(my_db)], metadata=share_metadata())
    await ds.invoke_startup()
    for path in ["/my/agent_logs?_search=pytest", "/my/prompts?_search=plan"]:
        sql_trace.statements.clear()
        response = await ds.client.get(path)
        assert response.status_code == 403, (path, response.status_code)
        # Datasette itself looks the table up in the catalog; nothing reads the index.
        assert sql_trace.matching("_fts match") == [], path
    # The same page, logged in: its search is counted (what the test would catch).
    sql_trace.statements.clear()
    cookies = {"ds_actor": ds.sign({"a": {"id": "admin"}}, "actor")}
    page = await get(ds, "/my/agent_logs?_search=pytest", cookies=cookies)
    assert "30 rows" in page.text
    assert sql_trace.matching("_fts match") != []


async def stream(ds: Datasette, query: str, until: Any) -> list[tuple[str, Any]]:
    """Messages of the event stream, read straight from the ASGI app until ``until(messages)``."""
    messages: list[tuple[str, Any]] = []
    buffer = ""
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal buffer
        if message["type"] == "http.response.start":
            assert message["status"] == 200
            assert dict(message["headers"])[b"content-type"].startswith(b"text/event-stream")
            return
        buffer += message.get("body", b"").decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in fields:
                messages.append((fields["event"], json.loads(fields["data"])))
        if until(messages):
            done.set()

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/-/live/events",
        "raw_path": b"/-/live/events",
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("localhost", 80),
    }
    await asyncio.wait_for(ds.app()(scope, receive, send), 30)
    return messages


async def test_the_stream_sends_the_backlog_runs_and_new_events(
    my_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with DatabaseManager(my_db) as db:
        await db.log_system_event("INFO", "before the page")
        await db.flush()
        ds = Datasette([str(my_db)])
        first = await stream(ds, "database=my", lambda m: any(kind == "runs" for kind, _ in m))
        kind, data = first[0]
        assert (kind, data["kind"], data["text"]) == ("event", "system", "before the page")
        assert first[-1][0] == "runs"
        assert first[-1][1]["runs"] == []

        async def write() -> None:
            await asyncio.sleep(0.5)
            async with db.agent_run("plan_build", name="live-run") as run:
                await run.prompt(
                    "/plan", "ok", model="claude-sonnet-4-5", usage={"output_tokens": 5}
                )
                await asyncio.sleep(0.6)

        writer = asyncio.ensure_future(write())
        seen = await stream(
            ds,
            "database=my",
            lambda m: any(kind == "event" and data["kind"] == "end" for kind, data in m),
        )
        await writer
    events = [data for kind, data in seen if kind == "event"]
    assert [e["kind"] for e in events] == ["system", "start", "prompt", "end"]
    assert {e["run"] for e in events[1:]} == {"live-run"}
    in_progress = [data["runs"] for kind, data in seen if kind == "runs" and data["runs"]]
    assert in_progress and in_progress[-1][0]["run"] == "live-run"
    assert in_progress[-1][0]["prompts"] == 1
    cost = sqlite3.connect(my_db).execute("SELECT cost_usd FROM prompts").fetchone()[0]
    assert in_progress[-1][0]["cost_usd"] == pytest.approx(cost) and cost > 0
    assert events[2]["cost_usd"] == pytest.approx(cost)


async def test_each_stream_ends_so_the_server_can_stop(
    my_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STREAM_S", 0.5)
    ds = Datasette([str(my_db)])
    started = time.monotonic()
    messages = await stream(ds, "", lambda m: False)  # never hangs up: the server does
    assert time.monotonic() - started < 5
    assert [kind for kind, _ in messages] == ["runs"]


# -- the real `datasette serve` command ------------------------------------------------


def test_plain_datasette_serve_shows_the_reports_and_live_page(tmp_path: Path, my_db: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "orchestrator_shim.py").write_text(SHIM)
    port = free_port()
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    datasette = shutil.which("datasette", path=str(Path(sys.executable).parent))
    command = [datasette or "datasette", "serve", str(my_db), "--port", str(port)]
    log = tmp_path / "datasette.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--plugins-dir", str(plugins)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while http_status(f"{url}/-/versions.json") is None:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        status, body = http_get(f"{url}/my.json")
        assert status == 200
        assert [q["name"] for q in json.loads(body)["queries"]] == list(reports())
        assert http_get(f"{url}/-/dashboards/overview")[0] == 200
        status, body = http_get(f"{url}/my/agent_logs?_search=ok")  # the plugin's search
        assert status == 200 and b'id="_search"' in body
        assert b"0 rows where search matches" in body
        status, body = http_get(f"{url}/-/live")
        assert status == 200 and b"Runs in progress" in body
        script = re.search(rb'<script src="([^"]+/live\.js)"', body)
        assert script and http_get(url + script[1].decode())[0] == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


# -- panels that show a canned report ---------------------------------------------------------


async def test_a_panel_naming_a_report_runs_that_reports_sql(my_db: Path) -> None:
    """The month view is monthly_tokens' SQL and the block panel a select over
    usage_blocks' SQL, as metadata.yml's queries have them: written once."""
    ds = Datasette([str(my_db)])
    charts = ds.plugin_config("datasette-dashboards")["overview"]["charts"]
    written = load_metadata()["plugins"]["datasette-dashboards"]["overview"]["charts"]
    assert written["spend-by-month"]["query"] == {"report": "monthly_tokens"}
    assert charts["spend-by-month"]["query"] == reports()["monthly_tokens"].sql
    assert written["current-block"]["query"]["report"] == "usage_blocks"
    block_sql = charts["current-block"]["query"]
    assert block_sql == (
        f"WITH usage_blocks AS (\n{reports()['usage_blocks'].sql}\n)\n"
        + written["current-block"]["query"]["select"]
    )
    # Served under another name, the report is that database's.
    backend.connect(my_db.with_name("other.db")).close()
    two = Datasette([str(my_db), str(my_db.with_name("other.db"))])
    config = two.plugin_config("datasette-dashboards")
    assert config["overview-other"]["charts"]["spend-by-month"]["query"] == (
        reports()["monthly_tokens"].sql
    )


def test_a_panel_naming_no_report_is_refused_by_name(tmp_path: Path) -> None:
    from orchestrator.reports.canned import fill_report_queries

    metadata = load_metadata()
    charts = metadata["plugins"]["datasette-dashboards"]["overview"]["charts"]
    charts["spend-by-month"]["query"] = {"report": "no_such_report"}
    with pytest.raises(ValueError, match="chart 'spend-by-month': no report 'no_such_report'"):
        fill_report_queries(metadata)
    charts["spend-by-month"]["query"] = {"report": "monthly_tokens", "sql": "SELECT 1"}
    with pytest.raises(ValueError, match="chart 'spend-by-month': query takes report and select"):
        fill_report_queries(metadata)


def _blocks_history(path: Path, now: float) -> list[tuple[float, float]]:
    """Prompts of known cost: an old block, then one active now (three prompts over 70
    minutes, the last 10 minutes ago); their (time, cost), times moved back by SQL."""
    from orchestrator import SyncDatabaseManager

    times = [now - 9 * 3600, now - 8.5 * 3600, now - 80 * 60, now - 40 * 60, now - 10 * 60]
    costs = [1.25, 0.5, 0.75, 1.5, 0.25]
    with SyncDatabaseManager(path) as db:
        with db.agent_run("plan_build", session_id="blocks") as run:
            for cost in costs:
                run.prompt(
                    "/build",
                    "ok",
                    model="claude-sonnet-4-5",
                    cost_usd=cost,
                    usage={"input_tokens": 1000, "output_tokens": 500},
                )
    conn = sqlite3.connect(path)
    ids = [row[0] for row in conn.execute("SELECT id FROM prompts ORDER BY created_at, id")]
    for prompt_id, at in zip(ids, times, strict=True):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + ".000Z"
        conn.execute("UPDATE prompts SET created_at = ? WHERE id = ?", (stamp, prompt_id))
    conn.commit()
    conn.close()
    return list(zip([float(int(t)) for t in times], costs, strict=True))


async def test_the_block_panel_weighs_the_latest_block_against_the_limit(my_db: Path) -> None:
    now = time.time()
    history = _blocks_history(my_db, now)
    # ccusage's rule, computed here: a block starts at the hour of its first prompt and
    # holds the prompts of the 5 hours after; the next starts at the first one after.
    blocks: list[list[tuple[float, float]]] = []
    for at, cost in history:
        if not blocks or at >= blocks[-1][0][0] // 3600 * 3600 + 5 * 3600:
            blocks.append([])
        blocks[-1].append((at, cost))
    latest = blocks[-1]
    start = latest[0][0] // 3600 * 3600
    spent = sum(cost for _, cost in latest)
    minutes = (latest[-1][0] - latest[0][0]) / 60
    left = (start + 5 * 3600 - now) / 60
    projected = spent + spent / minutes * left
    assert len(blocks) == 2 and spent == 2.5

    ds = Datasette([str(my_db)])
    sql = ds.plugin_config("datasette-dashboards")["overview"]["charts"]["current-block"]["query"]
    for limit, verdict in [
        ("", "no limit set"),
        ("2", "over the limit"),
        (f"{projected + 0.5:.2f}", "within the limit"),
        (f"{projected - 0.25:.2f}", "projected over the limit"),
    ]:
        query = urlencode({"sql": sql, "block_limit_usd": limit, "_shape": "objects"})
        rows = (await get(ds, f"/my.json?{query}")).json()["rows"]
        assert len(rows) == 1, rows
        row = rows[0]
        assert row["block_start"] == time.strftime("%Y-%m-%dT%H:00:00.000Z", time.gmtime(start))
        assert row["state"] == "active" and row["spent_usd"] == spent
        assert row["minutes_left"] == pytest.approx(left, abs=0.2)
        assert row["usd_per_minute"] == pytest.approx(spent / minutes, abs=1e-6)
        assert row["projected_usd"] == pytest.approx(projected, abs=0.02)
        assert row["tokens"] == 3 * 1500
        assert row["verdict"] == verdict, (limit, row)
        if limit:
            assert row["limit_usd"] == float(limit)
            assert row["spent_pct"] == round(100 * spent / float(limit), 1)
        else:
            assert row["limit_usd"] is None and row["spent_pct"] is None
