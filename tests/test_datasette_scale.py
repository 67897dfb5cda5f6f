"""Datasette pages of big tables: configured facets within a bound, searches that stop at
the page, and a search's count capped and said so.

The plugin is served alone (no ``-m`` metadata), as with plain ``datasette serve``; the
bounds are lowered so that the shared demo database (about 20,000 agent logs) is "big".
Rows are checked against Python's own reading of the raw rows: a word search is the rows
whose message has the word as a token (letters and digits, any case), newest first.
"""

from __future__ import annotations

import html
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette

from orchestrator.datasette_plugin import facets, search
from orchestrator.reports.canned import metadata_for

DB = "orchestrator"  # the demo file's name


pytestmark = pytest.mark.usefixtures("registered_plugin")


def rows_of(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def logs_with(path: Path, word: str) -> list[tuple[str, str]]:
    """(created_at, id) of the agent logs whose message has ``word``, newest first."""
    logs = rows_of(path, "SELECT id, message, created_at FROM agent_logs")
    found = [
        (created_at, id_)
        for id_, message, created_at in logs
        if word in re.findall(r"[^\W_]+", message.lower())
    ]
    return sorted(found, reverse=True)


async def page(ds: Datasette, path: str) -> Any:
    response = await ds.client.get(path)
    assert response.status_code == 200, (path, response.text[:500])
    return response


def heading(text: str) -> str:
    return " ".join(html.unescape(re.search(r"<h3>(.*?)</h3>", text, re.S)[1]).split())


def facet_counts(text: str) -> dict[str, dict[str, int]]:
    """The facets an HTML table page shows: column -> value -> count."""
    found = {}
    for column, body in re.findall(
        r'<div class="facet-info[^"]*" id="facet-[^"]*" data-column="([^"]+)">(.*?)</div>',
        text,
        re.S,
    ):
        items = re.findall(r"<li><a [^>]*>([^<]*)</a> ([\d,]+)</li>", body)  # to select
        items += re.findall(r"<li>([^<]*) &middot; ([\d,]+) <a ", body)  # selected
        found[column] = {html.unescape(v): int(n.replace(",", "")) for v, n in items}
    return found


async def walk(ds: Datasette, path: str, pages: int) -> list[dict[str, Any]]:
    """The rows of the first ``pages`` pages of a table's JSON, following ``next``."""
    rows: list[dict[str, Any]] = []
    url: str | None = path
    for _ in range(pages):
        if url is None:
            break
        data = (await page(ds, url)).json()
        rows += data["rows"]
        url = data["next_url"] and data["next_url"].replace("http://localhost", "")
    return rows


# -- facets ----------------------------------------------------------------------------


async def test_facets_are_computed_up_to_max_rows_and_then_left_out(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = Datasette([str(demo_db)])
    (logs,) = rows_of(demo_db, "SELECT count(*) FROM agent_logs")[0]
    by_type = dict(rows_of(demo_db, "SELECT log_type, count(*) FROM agent_logs GROUP BY 1"))
    shown = facet_counts((await page(ds, f"/{DB}/agent_logs")).text)
    assert shown["log_type"] == by_type and set(shown) == {"log_type", "step"}

    monkeypatch.setattr(facets, "MAX_ROWS", logs - 1)
    big = (await page(ds, f"/{DB}/agent_logs")).text
    assert facet_counts(big) == {} and "timed out" not in big
    assert f"{logs:,} rows" in heading(big)  # the count is still Datasette's exact one
    # A filter that selects few enough rows brings them back, counted over those rows.
    narrowed = facet_counts((await page(ds, f"/{DB}/agent_logs?log_type=error")).text)
    steps = rows_of(
        demo_db, "SELECT step, count(*) FROM agent_logs WHERE log_type = 'error' GROUP BY 1"
    )
    assert narrowed["log_type"] == {"error": by_type["error"]}
    assert narrowed["step"] == {step: n for step, n in steps if step is not None}
    # Asked for by name, a facet is Datasette's, at any size, and is not shown twice.
    asked = (await page(ds, f"/{DB}/agent_logs.json?_facet=log_type")).json()
    assert {r["value"]: r["count"] for r in asked["facet_results"]["log_type"]["results"]} == (
        by_type
    )
    assert list(asked["facet_results"]) == ["log_type"]


# -- search ----------------------------------------------------------------------------


async def test_a_search_alone_over_many_rows_is_counted_up_to_the_cap(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = logs_with(demo_db, "ok")
    monkeypatch.setattr(search, "COUNT_CAP", len(expected) // 2)
    ds = Datasette([str(demo_db)])
    first = (await page(ds, f"/{DB}/agent_logs?_search=ok")).text
    cap = f"{len(expected) // 2:,}"
    assert heading(first).startswith(f'more than {cap} rows where search matches "ok"')
    assert f"more than {cap} rows" in re.search(r"<title>(.*?)</title>", first, re.S)[1]
    assert 'id="_search"' in first and 'value="ok"' in first
    # The rows: the newest matches, page after page (the next link keeps the capped count).
    next_link = html.unescape(re.search(r'href="([^"]*_next=[^"]*)"', first)[1])
    assert "_nocount=search" in next_link
    second = (await page(ds, next_link.replace("http://localhost", ""))).text
    assert heading(second).startswith(f"more than {cap} rows")
    rows = await walk(ds, f"/{DB}/agent_logs.json?_search=ok&_shape=objects&_nocount=1", 3)
    assert [r["created_at"] for r in rows] == [created for created, _ in expected[:300]]
    assert {r["id"] for r in rows} <= {id_ for _, id_ in expected}
    assert len({r["id"] for r in rows}) == 300

    # Under the cap, or with another filter, Datasette counts, exactly.
    rare = logs_with(demo_db, "failed")
    assert 0 < len(rare) <= len(expected) // 2
    exact = (await page(ds, f"/{DB}/agent_logs?_search=failed")).text
    assert heading(exact).startswith(f'{len(rare):,} rows where search matches "failed"')
    kind = "tool_result"
    both = (await page(ds, f"/{DB}/agent_logs?_search=ok&log_type={kind}&_nocount=search")).text
    (n,) = rows_of(
        demo_db,
        "SELECT count(*) FROM agent_logs WHERE log_type = ? AND rowid IN "
        "(SELECT rowid FROM agent_logs_fts WHERE agent_logs_fts MATCH 'ok')",
        (kind,),
    )[0]
    assert heading(both).startswith(f"{n:,} rows where ")


COSTS = {  # (ROW_COST, LIST_COST, PROBE_COST) that make plan() pick each way
    "list": (1e-6, 1e9, 1e9),
    "walk-list": (1e9, 1e-6, 1e9),
    "walk-probe": (1e9, 1e9, 1e-6),
}
SQL_OF = {"list": " rowid in (select", "walk-list": "+rowid in (select", "walk-probe": "exists ("}


@pytest.mark.parametrize("how", list(COSTS))
@pytest.mark.parametrize(("word", "sort"), [("ok", ""), ("verify", ""), ("ok", "&_sort=id")])
async def test_every_way_of_searching_finds_the_same_rows(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch, how: str, word: str, sort: str
) -> None:
    for name, value in zip(("ROW_COST", "LIST_COST", "PROBE_COST"), COSTS[how], strict=True):
        monkeypatch.setattr(search, name, value)
    ds = Datasette([str(demo_db)])
    path = f"/{DB}/agent_logs.json?_search={word}&_shape=objects&_nocount=1&_size=40{sort}"
    data = (await page(ds, path)).json()
    assert SQL_OF[how] in data["query"]["sql"]
    rows = await walk(ds, path, 3)
    expected = logs_with(demo_db, word)
    if sort:  # by id, oldest first
        assert [r["id"] for r in rows] == sorted(id_ for _, id_ in expected)[:120]
    else:
        assert [r["created_at"] for r in rows] == [c for c, _ in expected[:120]]
        assert {r["id"] for r in rows} <= {id_ for _, id_ in expected}


async def test_the_plan_follows_the_number_of_matches(demo_db: Path) -> None:
    """With the measured costs: the list for a rare word, a walk for a common one."""
    words = Counter(
        word
        for (message,) in rows_of(demo_db, "SELECT message FROM agent_logs")
        for word in set(re.findall(r"[^\W_]+", message.lower()))
    )
    rare = min(words, key=lambda w: (words[w], w))
    conn = sqlite3.connect(demo_db)
    conn.create_function("escape_fts", 1, lambda q: f'"{q}"')
    try:

        def plan(word: str) -> str:
            term = search.Term("search", None, word, raw=False)
            return search.plan(
                conn,
                "agent_logs",
                "agent_logs_fts",
                term,
                sort_column="created_at",
                descending=True,
                page_size=100,
            )

        assert plan(rare) == "list"
        assert plan("ok") in ("walk-list", "walk-probe")
        # No index to walk the order of a column: the list.
        term = search.Term("search", None, "ok", raw=False)
        unindexed = search.plan(
            conn,
            "agent_logs",
            "agent_logs_fts",
            term,
            sort_column="message",
            descending=False,
            page_size=100,
        )
        assert unindexed == "list"
    finally:
        conn.close()


async def test_searches_by_column_raw_and_empty(demo_db: Path) -> None:
    ds = Datasette([str(demo_db)])
    everything = (await page(ds, f"/{DB}/agent_logs?_search=")).text  # Datasette 0.65: 400
    (logs,) = rows_of(demo_db, "SELECT count(*) FROM agent_logs")[0]
    assert heading(everything).startswith(f"{logs:,} rows")
    column = f"/{DB}/agent_logs.json?_search_message=verify&_shape=array"
    by_column = (await page(ds, column)).json()
    assert sorted(r["id"] for r in by_column) == sorted(i for _, i in logs_with(demo_db, "verify"))
    raw = f"/{DB}/agent_logs.json?_search=verify+OR+locate&_searchmode=raw&_shape=array&_size=max"
    found = {r["id"] for r in (await page(ds, raw)).json()}
    both = {i for w in ("verify", "locate") for _, i in logs_with(demo_db, w)}
    assert found == both
    response = await ds.client.get(f"/{DB}/agent_logs?_search_nothere=ok")
    assert response.status_code == 400


async def test_facets_and_fts_table_given_with_m_are_datasettes(demo_db: Path) -> None:
    mine = {"databases": {DB: {"tables": {"agent_logs": {"facets": ["step"]}}}}}
    ds = Datasette([str(demo_db)], metadata=mine)
    assert list(facet_counts((await page(ds, f"/{DB}/agent_logs")).text)) == ["step"]
    ds = Datasette([str(demo_db)], metadata=metadata_for(DB))
    data = (await page(ds, f"/{DB}/agent_logs.json?_search=ok&_nocount=1")).json()
    sql = data["query"]["sql"]
    assert sql.count("agent_logs_fts match") == 1 and "exists (" not in sql
    assert sorted(data["facet_results"]) == ["log_type", "step"]  # Datasette's, once each


async def test_the_database_pages_counts_are_sqlites_and_stop_at_their_limit(
    tmp_path: Path,
) -> None:
    from orchestrator.datasette_plugin.metadata import orchestrator_databases
    from orchestrator.store import sqlite as backend

    path = tmp_path / "orchestrator.db"
    backend.connect(path).close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE zz_big (x)")  # 40,000 pages: counted in tens of ms here
    conn.execute(
        "INSERT INTO zz_big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
        " WHERE i < 400000) SELECT zeroblob(400) FROM n"
    )
    conn.execute("CREATE TABLE zz_small (x)")  # counted right after the big one
    conn.executemany("INSERT INTO zz_small VALUES (?)", [(1,), (2,), (3,)])
    conn.commit()
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    truth = {name: conn.execute(f"SELECT count(*) FROM [{name}]").fetchone()[0] for name in names}
    conn.close()

    ds = Datasette([str(path)])
    assert orchestrator_databases(ds) == (DB,)
    database = ds.get_database(DB)
    assert await database.table_counts(60_000) == truth
    stopped = await database.table_counts(1)
    assert stopped["zz_big"] is None  # stopped at 1 ms
    # The stop never reaches the counts after it.
    assert {name: count for name, count in stopped.items() if name != "zz_big"} == {
        name: count for name, count in truth.items() if name != "zz_big"
    }
    page = await ds.client.get(f"/{DB}")
    assert page.status_code == 200 and "zz_small</a></h3>" in page.text.replace("\n", "")
