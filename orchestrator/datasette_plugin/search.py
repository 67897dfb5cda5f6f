"""Full-text search of the logs and prompts that stays fast for the commonest word.

Datasette 0.65 searches a table (``?_search=``; datasette/filters.py, ``search_filters``)
with ``rowid in (select rowid from FTS where FTS match :search)``, and counts the page's
rows with ``count(*)`` over the same condition. SQLite lists every matching rowid, reads
each row, sorts them all for the page's first 100 and reads them all again to count:
the commonest word of 10M agent logs (4.3M matches) runs past the time limit.

The plugin keeps metadata.yml's ``fts_table`` from Datasette (:mod:`.metadata`) and
searches those tables itself, matching as Datasette does (``escape_fts`` unless the
search mode is raw, ``_search`` or ``_search_COLUMN``), so the rows are Datasette's:

* on an HTML page whose only filter is a search that matches more than
  :data:`COUNT_CAP` rows, Datasette is asked not to count (``_nocount=search``, added by
  :func:`with_count_choice`) and the page says "more than 10,000 rows" instead, after a
  count that stops there (:class:`MoreThan`). Other pages are counted by Datasette;
* a page Datasette counts keeps Datasette's SQL, the cheapest way to both find and count
  the rows. On one it does not count, :func:`plan` picks the SQL from the number of
  matches (counted up to a bound) and the table's size: Datasette's list for a rare word;
  for a common one SQLite walks the page's sort order along its index, keeping the rows
  the search matches, and stops after the page's rows, checking each against the list of
  matches (``+rowid in``) or, for the commonest words, against the index row by row
  (``exists``), which spares listing millions of matches.
"""

from __future__ import annotations

import math
import sqlite3
import urllib.parse
from dataclasses import dataclass
from typing import Any

from datasette.filters import FilterArguments
from datasette.utils import escape_sqlite, tilde_decode
from datasette.utils.asgi import BadRequest

from .metadata import orchestrator_databases, state
from .visitor import can_see

#: A search that is a page's only filter is counted up to this many rows.
COUNT_CAP = 10_000
#: The marker :func:`with_count_choice` adds to such a page (``_nocount`` for Datasette).
NOCOUNT = ("_nocount", "search")

# What it costs SQLite per row, relative to stepping one row along an index and checking
# it against a list of rowids (about 1 us here; measured on 10M agent logs):
#: reading and sorting a row of Datasette's list of matches;
ROW_COST = 4.0
#: adding a rowid to the list of matches;
LIST_COST = 0.3
#: asking the full-text index whether it matches one row (``exists``).
PROBE_COST = 75.0

#: Arguments of a table page that do not choose which rows it counts: a search with only
#: these beside it is the page's only filter.
_QUIET = {
    "_searchmode",
    "_sort",
    "_sort_desc",
    "_next",
    "_size",
    "_nofacet",
    "_nosuggest",
    "_labels",
    "_label",
    "_col",
    "_nocol",
    "_trace",
    "_timelimit",
    "_ttl",
}


class MoreThan(int):
    """A row count known only to be above ``int(self)``.

    Datasette's table template shows the count as ``"{:,}".format(count)`` followed by
    "row"/"rows": this one formats as "more than 10,000".
    """

    def __format__(self, spec: str) -> str:
        return f"more than {int(self):{spec}}"


@dataclass(frozen=True)
class Term:
    """One ``_search`` or ``_search_COLUMN`` argument, as Datasette reads it."""

    param: str  # its SQL parameter: search, or search_N as Datasette names them
    column: str | None  # None: every column of the index
    text: str
    raw: bool  # FTS5 query syntax as given, not escaped with escape_fts()

    def match(self, fts: str) -> str:
        """The MATCH condition on the index ``fts``."""
        target = escape_sqlite(fts if self.column is None else self.column)
        value = f":{self.param}" if self.raw else f"escape_fts(:{self.param})"
        return f"{target} match {value}"


def fts_table(datasette: Any, database: str, table: str) -> str | None:
    """The index the plugin searches ``table`` with: metadata.yml's ``fts_table``, unless
    Datasette searches this table itself (an ``fts_table`` given with ``-m``)."""
    own = state(datasette).table_options(datasette, database, table).get("fts_table")
    if not own or datasette.table_metadata(database, table).get("fts_table"):
        return None
    return str(own)


def terms(datasette: Any, database: str, table: str, args: Any) -> list[Term]:
    """The searches of a page's arguments, as Datasette 0.65 reads them (``_search``, or
    else each ``_search_COLUMN``); an empty one searches nothing and is left out."""
    raw = datasette.table_metadata(database, table).get("searchmode") == "raw"
    raw = {"raw": True, "escaped": False}.get(args.get("_searchmode"), raw)
    keys = [key for key in args if key.startswith("_search") and key != "_searchmode"]
    if "_search" in keys:
        keys = ["_search"]
    found = []
    for i, key in enumerate(keys):
        text = args[key]
        if not text.strip():
            continue  # Datasette would fail on it ("fts5: syntax error")
        if key == "_search":
            found.append(Term("search", None, text, raw))
        else:
            found.append(Term(f"search_{i}", key[len("_search_") :], text, raw))
    return found


def is_only_filter(args: Any) -> bool:
    """Whether a page's arguments choose its rows by one search and nothing else."""
    searches = [key for key in args if key.startswith("_search") and key != "_searchmode"]
    others = [
        key
        for key in args
        if key not in _QUIET and not key.startswith(("_search", "_facet")) and key != "_nocount"
    ]
    return len(searches) == 1 and not others


def _sort_column(datasette: Any, database: str, table: str, args: Any) -> str | None:
    """The column a page is sorted by first (None: by primary key or rowid)."""
    table_metadata = datasette.table_metadata(database, table)
    for key in ("_sort", "_sort_desc"):
        if args.get(key):
            return str(args[key])
    for key in ("sort", "sort_desc"):
        if table_metadata.get(key):
            return str(table_metadata[key])
    return None


def _walkable(conn: sqlite3.Connection, table: str, column: str | None) -> bool:
    """Whether SQLite can read ``table`` in the order of ``column`` along an index."""
    if column in (None, "rowid"):
        return True  # primary key or rowid order
    leading = set()
    for index, partial in conn.execute(
        "SELECT name, partial FROM pragma_index_list(?)", [table]
    ).fetchall():
        if not partial:
            first = conn.execute(
                "SELECT name FROM pragma_index_info(?) WHERE seqno = 0", [index]
            ).fetchone()
            if first:
                leading.add(first[0])
    integer_pk = conn.execute(
        "SELECT name FROM pragma_table_info(?) WHERE pk = 1 AND upper(type) = 'INTEGER'",
        [table],
    ).fetchone()
    return column in leading or bool(integer_pk and integer_pk[0] == column)


def plan(
    conn: sqlite3.Connection,
    table: str,
    fts: str,
    term: Term,
    *,
    sort_column: str | None,
    descending: bool,
    page_size: int,
) -> str:
    """How to find ``term``'s rows of ``table`` for a page: ``list`` (Datasette's SQL),
    ``walk-list`` or ``walk-probe`` (see the module docstring), by the least expected cost.

    The walks read the table in the page's order until they have ``page_size`` + 1 rows:
    about that many times the table's size over the matches, or further when the matches
    nearest the page's end are far from it (judged by rowid, which follows the order
    rows were written in, as created_at does).
    """
    if not _walkable(conn, table, sort_column):
        return "list"
    name = escape_sqlite(table)
    # Two subqueries: SQLite reads one end of the table for each (min and max in one
    # SELECT would scan it all).
    low, high = conn.execute(
        f"SELECT (SELECT min(rowid) FROM {name}), (SELECT max(rowid) FROM {name})"
    ).fetchone()
    if low is None:
        return "list"
    rows = high - low + 1
    wanted = page_size + 1
    # Past this many matches the probe is the cheapest whatever the walk's length: counting
    # further would only cost time (matches == cap below means "at least").
    cap = max(math.ceil(math.sqrt(wanted * rows * PROBE_COST / LIST_COST)), wanted) + 1
    match = term.match(fts)
    params = {term.param: term.text}
    (matches,) = conn.execute(
        f"SELECT count(*) FROM (SELECT rowid FROM {escape_sqlite(fts)} WHERE {match} LIMIT {cap})",
        params,
    ).fetchone()
    if matches <= wanted:
        return "list"
    walk = wanted * rows / matches
    if sort_column in (None, "rowid", "created_at", "id"):  # orders that follow rowid's
        order = "DESC" if descending else "ASC"
        (nearest,) = conn.execute(
            f"SELECT rowid FROM {escape_sqlite(fts)} WHERE {match} "
            f"ORDER BY rowid {order} LIMIT 1 OFFSET {wanted - 1}",
            params,
        ).fetchone()
        walk = max(walk, (high - nearest) if descending else (nearest - low))
    costs = {
        "list": matches * ROW_COST,
        "walk-list": matches * LIST_COST + walk,
        "walk-probe": walk * PROBE_COST,
    }
    return min(costs, key=costs.__getitem__)


def clause(table: str, fts: str, term: Term, how: str) -> str:
    """The WHERE condition that finds ``term``'s rows of ``table`` as :func:`plan` chose."""
    match = term.match(fts)
    if how == "walk-probe":
        return (
            f"exists (select 1 from {escape_sqlite(fts)} where {match} "
            f"and {escape_sqlite(fts)}.rowid = {escape_sqlite(table)}.rowid)"
        )
    # "+" keeps SQLite from reading the table through the list: it walks the sort order.
    rowid = "+rowid" if how == "walk-list" else "rowid"
    return f"{rowid} in (select rowid from {escape_sqlite(fts)} where {match})"


async def count_up_to_cap(db: Any, table: str, fts: str, term: Term) -> int:
    """The rows of ``table`` among the first :data:`COUNT_CAP` + 1 matches of ``term``:
    above the cap means that more than COUNT_CAP rows match."""
    sql = (
        f"select count(*) from {escape_sqlite(table)} where rowid in (select rowid from "
        f"{escape_sqlite(fts)} where {term.match(fts)} limit {COUNT_CAP + 1})"
    )
    return int((await db.execute(sql, {term.param: term.text})).single_value())


async def filters_from_request(
    request: Any, database: str, table: str, datasette: Any
) -> FilterArguments | None:
    """The search part of a page of a table the plugin searches (the hook's body)."""
    fts = fts_table(datasette, database, table)
    if fts is None or "_fts_table" in request.args:  # Datasette searches the one asked for
        return None
    db = datasette.get_database(database)
    found = terms(datasette, database, table, request.args)
    context: dict[str, Any] = {"supports_search": True}
    if not found:
        return FilterArguments([], extra_context=context)
    for term in found:
        if term.column is not None and term.column not in await db.table_columns(fts):
            raise BadRequest("Cannot search by that column")
    args = request.args
    context["search"] = found[-1].text
    params = {term.param: term.text for term in found}
    descriptions = [
        f'search matches "{term.text}"'
        if term.column is None
        else f'search column "{term.column}" matches "{term.text}"'
        for term in found
    ]
    if not (args.get("_nocount") or args.get("_shape") in ("array", "object")):
        # Datasette counts the rows: its SQL finds and counts them at the least cost.
        return FilterArguments(
            [clause(table, fts, term, "list") for term in found], params, descriptions, context
        )
    sort_column = _sort_column(datasette, database, table, args)
    descending = bool(args.get("_sort_desc")) or (
        not args.get("_sort") and bool(datasette.table_metadata(database, table).get("sort_desc"))
    )
    size = args.get("_size") or datasette.table_metadata(database, table).get("size")
    page_size = datasette.page_size if not str(size).isdigit() else int(size)

    def plans(conn: sqlite3.Connection) -> list[str]:
        try:
            return [
                plan(
                    conn,
                    table,
                    fts,
                    term,
                    sort_column=sort_column,
                    descending=descending,
                    page_size=page_size,
                )
                for term in found
            ]
        except sqlite3.Error:  # a raw query FTS5 refuses: Datasette's SQL reports it
            return ["list"] * len(found)

    hows = await db.execute_fn(plans)
    if (
        args.get(NOCOUNT[0]) == NOCOUNT[1]
        and request.url_vars.get("format") is None  # the HTML page: the JSON has no label
        and is_only_filter(args)
        and await count_up_to_cap(db, table, fts, found[0]) > COUNT_CAP
    ):
        context["filtered_table_rows_count"] = MoreThan(COUNT_CAP)
    return FilterArguments(
        [clause(table, fts, term, how) for term, how in zip(found, hows, strict=True)],
        params,
        descriptions,
        context,
    )


async def with_count_choice(datasette: Any, scope: dict[str, Any]) -> dict[str, Any]:
    """``scope`` with ``_nocount=search`` added when it asks for the HTML page of a table
    the plugin searches, whose only filter is a search matching more than
    :data:`COUNT_CAP` rows; with one it added before taken out otherwise."""
    query = scope.get("query_string") or b""
    if b"_search" not in query and b"_nocount=search" not in query:
        return scope
    pairs = urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    kept = [pair for pair in pairs if pair != NOCOUNT]
    if await _count_is_capped(datasette, scope, kept):
        kept.append(NOCOUNT)
    if kept == pairs:
        return scope
    return dict(scope, query_string=urllib.parse.urlencode(kept).encode("latin-1"))


async def _count_is_capped(datasette: Any, scope: dict[str, Any], pairs: list[Any]) -> bool:
    raw_path = scope.get("raw_path")
    path = raw_path.decode("ascii") if raw_path else scope.get("path", "")
    base_url = datasette.setting("base_url")
    if base_url != "/" and path.startswith(base_url):
        path = "/" + path[len(base_url) :]
    parts = path.split("/")
    if len(parts) != 3 or not parts[2] or "." in parts[1] + parts[2]:
        return False  # not a table's HTML page (the JSON or CSV of one has a suffix)
    try:
        db = datasette.get_database(route=parts[1])
    except KeyError:
        return False
    table = tilde_decode(parts[2])
    args = _Args(pairs)
    if db.name not in orchestrator_databases(datasette) or not is_only_filter(args):
        return False
    if args.get("_nocount") or (fts := fts_table(datasette, db.name, table)) is None:
        return False
    found = terms(datasette, db.name, table, args)
    if len(found) != 1:
        return False
    # Before any SQL: Datasette checks the visitor only later, in the view (--share: an
    # anonymous visitor runs none).
    permissions = [("view-table", (db.name, table)), ("view-database", db.name), "view-instance"]
    if not await can_see(datasette, scope, permissions):
        return False
    sql = (
        f"select count(*) from (select rowid from {escape_sqlite(fts)} "
        f"where {found[0].match(fts)} limit {COUNT_CAP + 1})"
    )
    try:
        matches = (await db.execute(sql, {found[0].param: found[0].text})).single_value()
    except Exception:  # a bad raw query, a missing column: the page itself will say
        return False
    return bool(matches > COUNT_CAP)


class _Args(dict[str, str]):
    """Query arguments by name, the first value of each as in Datasette's ``request.args``."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        for key, value in pairs:
            self.setdefault(key, value)
