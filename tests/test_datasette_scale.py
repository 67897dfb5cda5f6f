"""Datasette pages of big tables: configured facets within a bound.

The plugin is served alone (no ``-m`` metadata), as with plain ``datasette serve``; the
bounds are lowered so that the shared demo database (about 20,000 agent logs) is "big".
Facet counts are checked against SQL over the raw rows.
"""

from __future__ import annotations

import html
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette
from datasette.plugins import pm

from orchestrator import datasette_plugin as plugin
from orchestrator.datasette_plugin import facets

DB = "orchestrator"  # the demo file's name


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    added = not pm.is_registered(plugin)
    if added:
        pm.register(plugin, name="orchestrator")
    yield
    if added:
        pm.unregister(plugin)


def rows_of(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


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
