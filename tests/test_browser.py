"""The served dashboard and reports in a real headless Chromium, offline.

Starts the real ``orchestrator serve`` command on a demo database, opens the
overview dashboard, a canned report, the home page and the live page in Debian's Chromium
(driven by Playwright, never a downloaded browser), and fails on any console
error, page error or request that tries to leave localhost. Skips when
/usr/bin/chromium is missing, unless ``ORCHESTRATOR_REQUIRE_BROWSER=1``.
A screenshot of the dashboard goes to ``tmp_path`` and, when set, to
``$ORCHESTRATOR_SCREENSHOT_DIR``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from backends import ACTIVITY, activity_payload, store_otlp_metrics
from servers import free_port

from orchestrator.commands.maintenance import backup
from orchestrator.reports.canned import load_metadata
from orchestrator.writer.budgets import set_budget

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: apt-get install chromium"
        if os.environ.get("ORCHESTRATOR_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def _serve_command() -> list[str]:
    script = Path(sys.executable).parent / "orchestrator"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from orchestrator.cli import cli; cli()"]


@dataclass
class Server:
    url: str
    db: Path


@contextlib.contextmanager
def serving(db: Path, folder: Path, *options: str) -> Iterator[Server]:
    """The real ``orchestrator serve`` on ``db`` (a file, or a PostgreSQL URL with
    ``--snapshot`` in ``options``), stopped (its whole session) at the end."""
    port = free_port()
    log = folder / "serve.log"
    with log.open("wb") as output:
        # Its own session: `serve` runs datasette as a child, and both must stop.
        process = subprocess.Popen(
            [*_serve_command(), "serve", str(db), "--port", str(port), *options],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/-/versions.json", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer on port {port} in 30 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield Server(url, db)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def server(
    chromium: Path, demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("browser")
    # A copy of the shared demo (conftest.py): the live page's test writes an event.
    db = backup(demo_db, folder / "orchestrator.db")
    set_budget(db, "workflow", "plan_build", daily_usd=5.0, monthly_usd=100.0)  # its panel
    store_otlp_metrics(db, activity_payload())  # Claude Code's metrics: their panel
    with serving(db, folder) as running:
        yield running


@dataclass
class Problems:
    """What the page did wrong: console errors, uncaught errors, requests off localhost."""

    console: list[str] = field(default_factory=list)
    page: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # console warnings (Vega-Lite's)

    def assert_none(self, *, warnings: bool = False) -> None:
        assert self.external == [], f"requests left localhost: {self.external}"
        assert self.page == [], f"page errors: {self.page}"
        assert self.console == [], f"console errors: {self.console}"
        if warnings:
            assert self.warnings == [], f"console warnings: {self.warnings}"


@pytest.fixture(scope="module")
def browser_context(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[tuple[Any, Problems]]:
    problems = Problems()

    def route(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            problems.external.append(url)
            route.abort()

    page = browser_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.route("**/*", route)

    def console(message: Any) -> None:
        text = f"{message.text} at {message.location}"
        if message.type == "error":
            problems.console.append(text)
        elif message.type == "warning":
            problems.warnings.append(text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.page.append(str(error)))
    try:
        yield page, problems
    finally:
        page.close()


def _query(db: Path, sql: str) -> Any:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def _painted_pixels(element: Any) -> int:
    return int(
        element.evaluate(
            """c => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
                return n;
            }"""
        )
    )


def test_dashboard_renders_every_chart_offline(
    server: Server, page: tuple[Any, Problems], tmp_path: Path
) -> None:
    tab, problems = page
    dashboard = load_metadata()["plugins"]["datasette-dashboards"]["overview"]
    tab.goto(f"{server.url}/-/dashboards/overview", wait_until="load")
    assert tab.locator("h1").first.inner_text() == dashboard["title"]

    for slug, chart in dashboard["charts"].items():
        container = tab.locator(f"#chart-{slug}")
        library = chart["library"]
        if library == "vega-lite":
            drawn = container.locator("canvas, svg").first
            drawn.wait_for(state="visible")
            box = drawn.bounding_box()
            assert box and box["width"] > 50 and box["height"] > 50, (slug, box)
            if drawn.evaluate("e => e.tagName") == "CANVAS":
                assert _painted_pixels(drawn) > 1000, f"{slug}: an empty canvas"
        elif library == "metric":
            container.locator("p").wait_for(state="visible")
        elif library == "table":
            container.locator("table tbody tr").first.wait_for(state="visible")
        else:
            pytest.fail(f"{slug}: no check for library {library!r}")

    # The figures shown, against the raw tables (the dashboard reads the daily summaries).
    prompts = _query(server.db, "SELECT count(*) FROM prompts")
    spend = _query(server.db, "SELECT round(sum(cost_usd), 2) FROM prompts")
    failed = _query(server.db, "SELECT count(*) FROM agents WHERE status = 'failed'")
    assert prompts >= 400 and spend > 0 and failed > 0
    assert tab.locator("#chart-total-prompts p").inner_text() == str(prompts)
    shown_spend = tab.locator("#chart-total-spend p").inner_text()
    assert shown_spend.startswith("$") and float(shown_spend[1:]) == pytest.approx(spend, abs=0.01)
    assert tab.locator("#chart-failure-rate p").inner_text().endswith("%")
    assert tab.locator("#chart-latest-failures table tbody tr").count() == min(10, failed)

    tab.wait_for_load_state("networkidle")
    problems.assert_none(warnings=True)  # Vega-Lite warned of v5 specs and fit-y
    shot = tmp_path / "dashboard-overview.png"
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("ORCHESTRATOR_SCREENSHOT_DIR"):
        folder = Path(os.environ["ORCHESTRATOR_SCREENSHOT_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, folder / shot.name)
    problems.assert_none()


def test_canned_report_renders_rows(server: Server, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    tab.goto(f"{server.url}/orchestrator/spend_by_day", wait_until="load")
    rows = tab.locator("table.rows-and-columns tbody tr")
    rows.first.wait_for(state="visible")
    # With no start or end, a report covers all time: every day with prompts.
    days = _query(server.db, "SELECT count(DISTINCT substr(created_at, 1, 10)) FROM prompts")
    assert days > 0
    assert rows.count() == days
    first_day = rows.first.locator("td").first.inner_text()
    assert len(first_day) == 10 and first_day[4] == "-", first_day
    problems.assert_none()


def test_home_page_links_to_dashboard(server: Server, page: tuple[Any, Problems]) -> None:
    tab, problems = page
    tab.goto(f"{server.url}/", wait_until="load")
    link = tab.locator('a[href="/-/dashboards/overview"]').first
    assert link.is_visible()
    link.click()
    tab.wait_for_url("**/-/dashboards/overview")
    tab.locator("#chart-total-prompts p").wait_for(state="visible")
    problems.assert_none()


def test_live_page_shows_what_is_written_after_it_loads(
    server: Server, page: tuple[Any, Problems], tmp_path: Path
) -> None:
    from orchestrator import SyncDatabaseManager

    tab, problems = page
    tab.goto(f"{server.url}/-/live", wait_until="load")
    tab.locator('#live-status[data-state="open"]').wait_for()
    events = tab.locator("#live-events tbody tr")
    events.first.wait_for()  # the newest events so far
    newest = _query(server.db, "SELECT max(created_at) FROM system_logs")
    assert newest[:10] <= events.first.locator("td").first.inner_text()[:10]

    # This process writes; the server (another process) streams it to the page.
    with SyncDatabaseManager(server.db) as db:
        with db.agent_run("plan_build", session_id="browser-live", name="live-check") as run:
            run.prompt("/plan", "ok", model="claude-sonnet-4-5", usage={"output_tokens": 900})
            in_progress = tab.locator("#live-runs tbody tr", has_text="live-check")
            in_progress.wait_for(timeout=5_000)
            cells = in_progress.locator("td")
            # The run may reach the page in the event before its prompt's: wait for it.
            deadline = time.monotonic() + 5
            while cells.nth(6).inner_text() != "1" and time.monotonic() < deadline:
                tab.wait_for_timeout(100)
            assert cells.nth(6).inner_text() == "1"  # prompts so far
            cost = _query(server.db, "SELECT total_cost_usd FROM agents WHERE name = 'live-check'")
            assert cells.nth(7).inner_text() == f"${cost:.4f}" and cost > 0
            first = cells.nth(5).inner_text()
            tab.wait_for_timeout(2_100)
            assert cells.nth(5).inner_text() != first  # the elapsed time ticks
        db.log_system_event("ERROR", "live page check", source="browser-test")
    for kind in ["start", "prompt", "end"]:
        tab.locator("#live-events tbody tr", has_text="live-check").filter(
            has_text=kind
        ).first.wait_for(timeout=5_000)
    tab.locator("#live-events tbody tr.level-ERROR", has_text="live page check").wait_for(
        timeout=5_000
    )
    tab.locator("#live-runs tbody tr", has_text="live-check").wait_for(state="detached")
    tab.wait_for_timeout(6_000)  # a stream ends and the page reconnects: nothing doubles
    assert tab.locator("#live-events tbody tr", has_text="live page check").count() == 1
    assert tab.locator('#live-status[data-state="open"]').count() == 1
    shot = tmp_path / "live.png"
    tab.screenshot(path=str(shot))
    if os.environ.get("ORCHESTRATOR_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["ORCHESTRATOR_SCREENSHOT_DIR"]) / shot.name)
    problems.assert_none()


def test_live_page_shows_claude_code_hook_events_as_they_arrive(
    server: Server, page: tuple[Any, Problems], tmp_path: Path
) -> None:
    """A hook call as Claude Code makes it (a process, a PreToolUse event on stdin) reaches
    the open page: the workflow, the session's run and the tool, without a reload."""
    tab, problems = page
    tab.goto(f"{server.url}/-/live", wait_until="load")
    tab.locator('#live-status[data-state="open"]').wait_for()
    tab.locator("#live-events tbody tr").first.wait_for()
    tab.evaluate("window.__loadedOnce = true")  # gone if the page reloads
    session = "5f0c1d2e-7a8b-4c3d-9e0f-b1a2c3d4e5f6"
    event = {
        "session_id": session,
        "transcript_path": f"/home/dev/.claude/projects/-home-dev-shop/{session}.jsonl",
        "cwd": "/home/dev/shop",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": "Grep",
        "tool_input": {"pattern": "live-hook-marker", "path": "src"},
        "tool_use_id": "toolu_01LiveHookBrowser",
    }
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.claude_code.hook", "--db", str(server.db)],
        input=json.dumps(event).encode(),
        capture_output=True,
        env={
            **os.environ,
            "PYTHONPATH": str(root),
            "ORCHESTRATOR_HOOK_SPOOL": str(tmp_path / "spool"),
        },
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert not (tmp_path / "spool").exists() or not any(
        path.read_text() for path in (tmp_path / "spool").iterdir()
    ), "the hook spooled its event instead of writing it"
    row = tab.locator("#live-events tbody tr", has_text="live-hook-marker")
    row.wait_for(timeout=5_000)
    cells = [cell.inner_text() for cell in row.locator("td").all()]
    assert cells[1] == "claude-code:-home-dev-shop"
    assert cells[2].startswith(session)  # the session's run, by its name
    assert cells[3] == "log"
    assert cells[5].startswith("PreToolUse: Grep: ") and "live-hook-marker" in cells[5]
    assert tab.evaluate("window.__loadedOnce") is True  # the same page, not reloaded
    problems.assert_none()


# -- hostile text: stored by an ADW, shown as text on every page ------------------------------

#: Every field a page shows that an ADW (or an import) writes, by the tag its payload carries.
HOSTILE_TAGS = [
    "workflow",
    "workflow.description",
    "run.name",
    "run.session",
    "run.error",
    "prompt.content",
    "prompt.response",
    "model",
    "log.message",
    "log.step",
    "log.metadata",
    "system.message",
    "system.source",
    "system.metadata",
    "budget.name",
]


def hostile(tag: str) -> str:
    """Text that runs ``__xss(tag)`` wherever it is put into a page as HTML: in an element,
    in an attribute (the quotes close it) or in a script."""
    return (
        f"{tag} <img src=x onerror=\"__xss('{tag}')\"><script>__xss('{tag}')</script>"
        f"'\"><svg onload=__xss('{tag}')>"
    )


def write_hostile_history(target: Path | str) -> dict[str, str]:
    """One failed run whose every field is hostile (through the writer library, as an ADW
    writes), a system log and three budgets, in an SQLite file or a PostgreSQL store;
    returns the page of each hostile row."""
    from backends import execute, is_postgres, rows

    from orchestrator import SyncDatabaseManager
    from orchestrator.core.ids import utc_now

    workflow, model = hostile("workflow"), hostile("model")
    with SyncDatabaseManager(target) as manager:
        with contextlib.suppress(RuntimeError):
            with manager.agent_run(
                workflow,
                description=hostile("workflow.description"),
                session_id=hostile("run.session"),
                name=hostile("run.name"),
            ) as run:
                usage = {"input_tokens": 10, "output_tokens": 20}
                run.prompt(hostile("prompt.content"), hostile("prompt.response"), model=model)
                run.prompt("/plan", "ok", model="claude-sonnet-4-5", usage=usage)
                run.log(
                    "tool_use",
                    hostile("log.message"),
                    {"detail": hostile("log.metadata")},
                    step=hostile("log.step"),
                )
                raise RuntimeError(hostile("run.error"))
        manager.log_system_event(
            "ERROR",
            hostile("system.message"),
            source=hostile("system.source"),
            metadata={"detail": hostile("system.metadata")},
        )
    budgets = [("workflow", workflow), ("model", model), ("session", hostile("budget.name"))]
    for scope, name in budgets:
        if is_postgres(target):  # budgets.set_budget writes SQLite files only
            sql = "INSERT INTO budgets (scope, name, daily_usd, monthly_usd, updated_at) "
            execute(target, (sql + "VALUES (?, ?, 1.0, 2.0, ?)", (scope, name, utc_now())))
        else:
            set_budget(target, scope, name, daily_usd=1.0, monthly_usd=2.0)
    return {
        table: f"/orchestrator/{table}/{row[0]}"
        for table, column, tag in [
            ("orchestrator_agents", "name", "workflow"),
            ("agents", "name", "run.name"),
            ("prompts", "content", "prompt.content"),
            ("agent_logs", "message", "log.message"),
            ("system_logs", "message", "system.message"),
        ]
        for row in rows(target, f"SELECT id FROM {table} WHERE {column} = ?", (hostile(tag),))
    }


@pytest.fixture(scope="module")
def hostile_server(
    chromium: Path, demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("hostile")
    db = backup(demo_db, folder / "orchestrator.db")
    rows = write_hostile_history(db)
    with serving(db, folder) as running:
        yield running, rows


@pytest.fixture(scope="module")
def script_calls(browser_context: Any) -> list[tuple[str, str]]:
    """The calls of ``__xss`` (the hostile text's payload), by any page of the context:
    (the page's URL, the payload's tag). A test clears it first."""
    calls: list[tuple[str, str]] = []
    browser_context.expose_binding(
        "__xss", lambda source, tag: calls.append((source["frame"].url, tag))
    )
    return calls


#: Pages of one kind (see _kind) visited at most: rows of a table, a table sorted, ...
PER_KIND = 1
#: Pages the crawl may visit: more fails the test (a new kind of page, or a crawl gone wrong).
MAX_PAGES = 200


def _kind(url: str) -> str:
    """What a page is, for the crawl: its path with a row's key left out, and whether its
    arguments choose rows (a filter, a facet, a query: ``?filter``). Arguments that only
    sort, page or show a page otherwise (``_sort``, ``_next``, ``_hide_sql``) make no new
    kind: the same template shows other rows of the same table."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if len(segments) == 4 and not segments[1].startswith("-"):  # /database/table/row
        segments[3] = "*"
    names = [pair.split("=")[0] for pair in parts.query.split("&") if pair]
    chooses = any(not name.startswith("_") for name in names)
    return "/".join(segments) + ("?filter" if chooses else "")


def test_stored_text_runs_no_script_on_any_page(
    hostile_server: tuple[Server, dict[str, str]],
    script_calls: list[tuple[str, str]],
    page: Any,
) -> None:
    server, rows = hostile_server
    tab, problems = page
    fired = script_calls
    fired.clear()
    tab.on("dialog", lambda dialog: (fired.append((tab.url, dialog.message)), dialog.dismiss()))
    filtered = urlencode({"orchestrator": hostile("workflow"), "model": hostile("model")})
    queue = [
        f"{server.url}/",
        f"{server.url}/-/dashboards/overview",
        f"{server.url}/-/dashboards/overview?{filtered}",
        f"{server.url}/-/live",
        *(f"{server.url}{path}" for path in rows.values()),
    ]
    kinds: dict[str, int] = {}
    shown: dict[str, str] = {}  # url -> the page's text
    while queue and len(shown) < MAX_PAGES:
        url = queue.pop(0).split("#")[0]
        kind = _kind(url)
        if url in shown or kinds.get(kind, 0) >= PER_KIND:
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        tab.goto(url, wait_until="load")  # images loaded or failed: onerror has run
        path = urlsplit(url).path
        if path.startswith("/-/dashboards"):
            tab.wait_for_load_state("networkidle")  # every panel drawn
        elif path == "/-/live":
            tab.locator("#live-events tbody tr", has_text="run.name <img").first.wait_for()
        shown[url] = tab.locator("body").inner_text()
        for href in tab.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            target = urlsplit(href)
            if (
                f"{target.scheme}://{target.netloc}" == server.url
                and not target.path.endswith((".json", ".csv", ".db"))
                and target.path not in ("/-/logout",)
            ):
                queue.append(href)
    assert fired == [], f"stored text ran script: {fired}"
    left = [url for url in queue if kinds.get(_kind(url), 0) < PER_KIND]
    assert left == [], f"more than {MAX_PAGES} pages to visit: raise MAX_PAGES"

    everything = "\n".join(shown.values())
    missing = [tag for tag in HOSTILE_TAGS if f"{tag} <img src=x onerror=" not in everything]
    assert missing == [], f"never shown as text on {len(shown)} pages: {missing}"
    dashboard = shown[f"{server.url}/-/dashboards/overview"]
    for tag in ["run.name", "run.error", "workflow", "budget.name", "model"]:
        assert hostile(tag) in dashboard, tag  # the table panels, whole, as text
    for kind in ["/orchestrator", "/orchestrator/agents", "/-/dashboards/overview/budgets"]:
        assert kind in kinds, f"the crawl never reached {kind}"
    problems.assert_none()


# -- a new database: one day of data, no budgets ----------------------------------------------


@pytest.fixture(scope="module")
def one_day_server(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("one-day")
    db = folder / "orchestrator.db"
    # The command, not asyncio.run: Playwright's sync API holds this thread's event loop.
    demo = ["demo", "--db", str(db), "--prompts", "50", "--days", "1", "--seed", "7"]
    subprocess.run([*_serve_command(), *demo, "--end", "2026-11-02"], check=True)
    with serving(db, folder) as running:
        yield running


def _x_axis(tab: Any, slug: str) -> tuple[list[str], float, list[float]]:
    """The x-axis labels of chart ``slug`` (SVG), its drawing's width and its bars' widths."""
    chart = tab.locator(f"#chart-{slug} svg.marks")
    chart.wait_for(state="visible")
    axis = chart.locator('g.role-axis[aria-label^="X-axis"]').first
    labels = axis.locator("g.role-axis-label text").all_text_contents()
    bars = [box["width"] for box in _boxes(chart.locator("g.mark-rect.role-mark path"))]
    return labels, chart.bounding_box()["width"], bars


def _boxes(locator: Any) -> list[dict[str, float]]:
    return [box for box in (item.bounding_box() for item in locator.all()) if box]


def test_one_day_and_empty_panels_say_what_they_show(
    one_day_server: Server, page: tuple[Any, Problems]
) -> None:
    tab, problems = page
    days = _query(one_day_server.db, "SELECT count(DISTINCT day) FROM usage_daily")
    assert days == 1 and _query(one_day_server.db, "SELECT count(*) FROM budgets") == 0
    day = _query(one_day_server.db, "SELECT min(day) FROM usage_daily")
    tab.goto(f"{one_day_server.url}/-/dashboards/overview", wait_until="load")
    tab.wait_for_load_state("networkidle")
    assert tab.locator("#chart-budgets").inner_text().strip() == "no budgets set"
    shown_day = datetime.strptime(day, "%Y-%m-%d").strftime("%b %d")  # the axis' format
    for slug in ["spend-by-day", "failures-by-day"]:
        labels, width, bars = _x_axis(tab, slug)
        # One date a label (no hour ticks repeating the date); the day's bars, not a plot
        # filled by one bar.
        assert len(labels) == len(set(labels)) and shown_day in labels, (slug, labels)
        assert bars and max(bars) < width / 5, (slug, bars, width)
    problems.assert_none(warnings=True)

    assert tab.locator("#chart-latest-failures table tbody tr").count() == _query(
        one_day_server.db, "SELECT count(*) FROM agents WHERE status = 'failed'"
    )
    # A workflow with runs and no failure: its latest failures are "none".
    calm = _query(
        one_day_server.db,
        "SELECT o.name FROM orchestrator_agents o JOIN agents a ON a.orchestrator_agent_id = o.id"
        " GROUP BY o.name HAVING sum(a.status = 'failed') = 0 ORDER BY o.name LIMIT 1",
    )
    assert calm
    tab.goto(f"{one_day_server.url}/-/dashboards/overview?{urlencode({'orchestrator': calm})}")
    tab.wait_for_load_state("networkidle")
    assert tab.locator("#chart-latest-failures").inner_text().strip() == "none"
    assert tab.locator("#chart-spend-by-day svg.marks").count() == 1  # its spend is drawn
    # A window with nothing in it: every chart says so, the figures are 0.
    tab.goto(f"{one_day_server.url}/-/dashboards/overview?start=2020-01-01&end=2020-01-31")
    tab.wait_for_load_state("networkidle")
    for slug in ["spend-by-day", "tokens-by-type", "spend-by-model", "latest-failures"]:
        assert tab.locator(f"#chart-{slug}").inner_text().strip() == "none", slug
    assert tab.locator("#chart-spend-by-month").inner_text().strip() == "none"
    assert tab.locator("#chart-current-block").inner_text().strip() == "no prompts yet"
    assert tab.locator("#chart-total-prompts p").inner_text() == "0"
    problems.assert_none(warnings=True)


def _active_block(db: Path) -> list[tuple[str, float]]:
    """Three prompts of known cost in the last 80 minutes (a block active now), written
    through the writer, their times moved back by SQL; returns their (time, cost)."""
    from orchestrator import SyncDatabaseManager

    now = time.time()
    costs = [0.75, 1.5, 0.25]
    with SyncDatabaseManager(db) as manager:
        with manager.agent_run("plan_build", session_id="browser-blocks") as run:
            for cost in costs:
                usage = {"input_tokens": 1000, "output_tokens": 500}
                run.prompt("/build", "ok", model="claude-sonnet-4-5", cost_usd=cost, usage=usage)
    conn = sqlite3.connect(db)
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT p.id FROM prompts p JOIN agents a ON a.id = p.agent_id"
            " WHERE a.session_id = 'browser-blocks' ORDER BY p.created_at, p.id"
        )
    ]
    for prompt_id, minutes in zip(ids, [80, 40, 10], strict=True):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - minutes * 60))
        conn.execute("UPDATE prompts SET created_at = ? WHERE id = ?", (stamp, prompt_id))
    conn.commit()
    conn.close()
    return [(stamp, cost) for stamp, cost in zip(ids, costs, strict=True)]


def _latest_block(db: Path) -> tuple[datetime, list[tuple[datetime, float]]]:
    """ccusage's rule over every prompt, computed here: a block starts at the hour of its
    first prompt and holds the prompts of the 5 hours after; the next one starts at the
    first prompt after. The latest block's start and its prompts' (time, cost)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    found = conn.execute("SELECT created_at, cost_usd FROM prompts ORDER BY created_at").fetchall()
    conn.close()
    start, members = None, []
    for stamp, cost in found:
        at = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
        if start is None or (at - start).total_seconds() >= 5 * 3600:
            start, members = at.replace(minute=0, second=0), []
        members.append((at, cost or 0.0))
    assert start is not None
    return start, members


def test_block_panel_and_month_view(
    server: Server, page: tuple[Any, Problems], tmp_path: Path
) -> None:
    """The current 5-hour block against the limit the dashboard's filter sets, and the
    spend per month, as figures computed here from the prompts."""
    tab, problems = page
    _active_block(server.db)
    start, members = _latest_block(server.db)
    spent = sum(cost for _, cost in members)
    minutes = (members[-1][0] - members[0][0]).total_seconds() / 60
    left = (start.timestamp() + 5 * 3600 - time.time()) / 60  # naive UTC times: as UTC
    left += (datetime.now() - datetime.utcnow()).total_seconds() / 60
    projected = spent + spent / minutes * left
    limit = round((spent + projected) / 2, 2)  # spent under it, the projection over it
    assert spent < limit < projected

    tab.goto(
        f"{server.url}/-/dashboards/overview?{urlencode({'block_limit_usd': limit})}",
        wait_until="load",
    )
    assert tab.locator("#block_limit_usd").input_value() == str(limit)
    table = tab.locator("#chart-current-block table")
    table.locator("tbody tr").first.wait_for(state="visible")
    header = [cell.inner_text() for cell in table.locator("thead th").all()]
    cells = [cell.inner_text() for cell in table.locator("tbody tr").first.locator("td").all()]
    shown = dict(zip(header, cells, strict=True))
    assert table.locator("tbody tr").count() == 1
    assert shown["block_start"] == start.strftime("%Y-%m-%dT%H:00:00.000Z")
    assert shown["state"] == "active"
    assert float(shown["spent_usd"]) == pytest.approx(spent, abs=0.005)
    assert float(shown["limit_usd"]) == limit
    assert float(shown["spent_pct"]) == pytest.approx(100 * spent / limit, abs=0.1)
    assert float(shown["projected_usd"]) == pytest.approx(projected, abs=0.05)
    assert float(shown["minutes_left"]) == pytest.approx(left, abs=1)
    assert shown["verdict"] == "projected over the limit"

    # The month view: a bar a month with prompts (in order), as tall as its spend.
    conn = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)
    spend = dict(
        conn.execute(
            "SELECT substr(created_at, 1, 7), sum(coalesce(cost_usd, 0)) FROM prompts"
            " GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    conn.close()
    labels, _, _ = _x_axis(tab, "spend-by-month")
    assert len(spend) >= 3 and labels == list(spend)
    bars = sorted(
        _boxes(tab.locator("#chart-spend-by-month g.mark-rect.role-mark path")),
        key=lambda box: box["x"],
    )
    assert len(bars) == len(spend)
    tallest = max(spend.values())
    heights = [box["height"] / max(box["height"] for box in bars) for box in bars]
    assert heights == pytest.approx([usd / tallest for usd in spend.values()], abs=0.02)

    tab.wait_for_load_state("networkidle")
    problems.assert_none(warnings=True)
    shot = tmp_path / "dashboard-blocks.png"
    tab.locator("#chart-current-block").scroll_into_view_if_needed()
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("ORCHESTRATOR_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["ORCHESTRATOR_SCREENSHOT_DIR"]) / shot.name)


def test_claude_code_activity_panel(server: Server, page: tuple[Any, Problems]) -> None:
    """Commits, pull requests, lines and active time per user and team, as Claude Code's
    metrics (tests/backends.py's ACTIVITY) add up; a screenshot of the panel."""
    tab, problems = page
    tab.goto(f"{server.url}/-/dashboards/overview", wait_until="load")
    table = tab.locator("#chart-claude-code-activity table")
    table.locator("tbody tr").first.wait_for(state="visible")
    header = [cell.inner_text() for cell in table.locator("thead th").all()]
    shown = {}
    for row in table.locator("tbody tr").all():
        cells = dict(zip(header, [c.inner_text() for c in row.locator("td").all()], strict=True))
        shown[cells["user_id"]] = cells
    expected: dict[str, dict[str, float]] = {}
    for _, email, _, name, kind, value in ACTIVITY:
        column = {"lines_of_code.count": f"lines_{kind}", "active_time.total": "active"}.get(
            name, name.split(".")[0]
        )
        sums = expected.setdefault(email, {})
        sums[column] = sums.get(column, 0) + value
    assert set(shown) == set(expected)
    for email, sums in expected.items():
        cells = shown[email]
        assert cells["team"] == {"ana@example.com": "core", "bo@example.com": "web"}[email]
        assert int(cells["commits"]) == sums.get("commit", 0)
        assert int(cells["pull_requests"]) == sums.get("pull_request", 0)
        assert int(cells["sessions"]) == sums.get("session", 0)
        assert int(cells["lines_added"]) == sums.get("lines_added", 0)
        assert int(cells["lines_removed"]) == sums.get("lines_removed", 0)
        assert float(cells["active_hours"]) == round(sums.get("active", 0) / 3600, 2)
        assert float(cells["cost_usd"]) == pytest.approx(sums.get("cost", 0), abs=0.005)
    tab.wait_for_load_state("networkidle")
    problems.assert_none(warnings=True)
    panel = tab.locator("#chart-claude-code-activity").locator("xpath=..")
    shot = Path(os.environ.get("ORCHESTRATOR_SCREENSHOT_DIR") or server.db.parent)
    shot.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(shot / "claude-code-activity.png"))
    assert (shot / "claude-code-activity.png").stat().st_size > 5_000


def test_a_report_given_a_day_that_is_not_one_says_so(
    one_day_server: Server, page: tuple[Any, Problems]
) -> None:
    from orchestrator.reports.canned import check_date_window

    tab, problems = page
    with pytest.raises(ValueError) as refused:
        check_date_window({"start": "2026-13-01"})
    for path in ["/orchestrator/spend_by_day", "/-/dashboards/overview"]:
        response = tab.goto(f"{one_day_server.url}{path}?start=2026-13-01", wait_until="load")
        assert response.status == 400
        error = tab.locator("p.message-error")
        assert error.is_visible() and error.inner_text() == str(refused.value)
        start = tab.locator('input[name="start"]')
        assert start.input_value() == "2026-13-01"
        start.fill("2026-11-01")
        tab.locator('input[type="submit"]').click()
        tab.wait_for_load_state("load")
        assert urlsplit(tab.url).path == path and "start=2026-11-01" in tab.url
        assert tab.locator("p.message-error").count() == 0
    # The refused page's own 400 is the one console error.
    assert all("400" in line for line in problems.console), problems.console
    problems.console.clear()
    problems.assert_none()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_stored_text_runs_no_script_on_a_served_postgresql_snapshot(
    db_target: str,
    tmp_path: Path,
    script_calls: list[tuple[str, str]],
    page: tuple[Any, Problems],
) -> None:
    tab, problems = page
    fired = script_calls
    fired.clear()
    rows = write_hostile_history(db_target)
    snapshot = tmp_path / "snapshot" / "orchestrator.db"
    with serving(db_target, tmp_path, "--snapshot", str(snapshot)) as server:
        paths = ["/-/dashboards/overview", "/orchestrator/agents", *rows.values()]
        shown = ""
        for path in paths:
            tab.goto(f"{server.url}{path}", wait_until="load")
            tab.wait_for_load_state("networkidle")
            assert "Snapshot of postgresql://" in tab.locator("body").inner_text()
            shown += tab.locator("body").inner_text()
        assert fired == [], f"stored text ran script: {fired}"
        dashboard = tab
        dashboard.goto(f"{server.url}/-/dashboards/overview", wait_until="networkidle")
        for tag in ["run.name", "run.error", "workflow", "budget.name", "model"]:
            assert hostile(tag) in dashboard.locator("body").inner_text(), tag
    missing = [tag for tag in HOSTILE_TAGS if f"{tag} <img src=x onerror=" not in shown]
    assert missing == [], missing
    problems.assert_none()
