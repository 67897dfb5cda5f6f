"""metadata.yml's facets, computed only where they fit in a page's time.

Datasette computes a table's configured facets (``facets:`` in its metadata) over every
row the page selects, one ``group by`` each, each cut off at ``facet_time_limit_ms``
(datasette/facets.py, ``ColumnFacet.facet_results``). On a table of millions of rows
each one scans them all: it runs out its time, shows nothing but "These facets timed
out" and adds that time to the page (two facets of the agent logs at 10M rows: 0.4 s).

The plugin keeps ``facets`` from Datasette (:mod:`.metadata`) and computes them itself
with :class:`ConfiguredFacet`, as Datasette would, when Datasette counted the rows the
page selects and found at most :data:`MAX_ROWS`. A bigger or uncounted selection shows
none of them; a filter or search that narrows it brings them back, and ``?_facet=COLUMN``
(the column menu's "Facet by this") still asks Datasette for any facet at any size.
"""

from __future__ import annotations

from typing import Any

from datasette.facets import ColumnFacet, load_facet_configs

from .metadata import state

#: Most rows the configured facets are computed over (each is a scan of the selection:
#: three facets of 100,000 rows take about 0.15 s).
MAX_ROWS = 100_000


class ConfiguredFacet(ColumnFacet):
    """metadata.yml's facets of a table of an orchestrator database, bounded by
    :data:`MAX_ROWS`; shown as Datasette's column facets."""

    type = "orchestrator"

    def get_configs(self) -> list[dict[str, Any]]:
        columns = state(self.ds).table_options(self.ds, self.database, self.table).get("facets")
        if not columns or "facets" in (self.metadata or {}):
            return []  # none, or facets given with -m: those win, and Datasette shows them
        # A facet asked for with ?_facet= is Datasette's: not computed twice.
        theirs = load_facet_configs(self.request, self.metadata).get("column", [])
        taken = {c["config"].get("column") or c["config"].get("simple") for c in theirs}
        return [
            {"source": "metadata", "config": {"simple": column}}
            for column in columns
            if column not in taken
        ]

    async def suggest(self) -> list[dict[str, Any]]:
        return []  # Datasette's own column facets suggest

    async def facet_results(self) -> tuple[list[dict[str, Any]], list[str]]:
        if self.row_count is None or self.row_count > MAX_ROWS:
            return [], []
        results, timed_out = await super().facet_results()
        for result in results:
            result["type"] = ColumnFacet.type  # shown (and served as JSON) like Datasette's
        return results, timed_out
