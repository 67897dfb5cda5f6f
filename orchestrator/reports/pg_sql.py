"""SQLite report SQL translated into PostgreSQL that returns the same rows (sqlglot).

Each report's SQL is written once, in SQLite's dialect (Datasette runs it as is). For a
``postgresql://`` database, :func:`translate` parses it with sqlglot and rewrites it into
PostgreSQL that returns the same columns and the same rows in the same order, values of
the same Python types (int, float, str, None), or refuses it with :class:`UnsupportedSQL`
naming what has no exact translation. What it rewrites, and why:

* ``:name`` parameters become ``$n::text`` (asyncpg numbers them; like Datasette, a missing
  one is ``''``); where SQLite would turn the text into a number (``coalesce(nullif(:limit,
  ''), 50)``, a comparison with a number) it is cast to that number's type. A negative
  ``LIMIT`` (SQLite: no limit) becomes ``LIMIT NULL``.
* Types, from the schema (the SQLite migrations' declared types, which PostgreSQL's
  migrations mirror): ``sum()`` of integers stays ``bigint`` (PostgreSQL's is ``numeric``,
  and would turn integer division into exact division), ``avg()`` is ``double
  precision``, literals such as ``1.0`` are ``double precision`` (PostgreSQL reads them as
  ``numeric``), ``round(x, n)`` rounds ``x::numeric`` and returns a double, booleans used
  as values are 0 and 1, ``CAST(x AS INTEGER)`` truncates as SQLite does.
* Text compares byte by byte in SQLite. Sort keys, ``min``/``max`` and range comparisons
  on text get ``COLLATE "C"``, whatever the server's collation, except columns of the
  project's timestamp format (``day`` and ``*_at``: ``YYYY-MM-DD[THH:MM:SS.mmmZ]``, which
  every collation orders as bytes), so that their indexes still serve ``ORDER BY``.
  ``LIKE`` folds ASCII case only and has no escape character, as in SQLite.
* NULLs sort first ascending (sqlglot writes ``NULLS FIRST``/``LAST``), ``x / 0`` is NULL,
  ``IS`` is ``IS NOT DISTINCT FROM``, SQLite's scalar ``max(a, b)``/``min(a, b)`` are NULL
  when an argument is, result-column aliases used inside ``ORDER BY`` expressions are
  replaced by their expressions, the unary ``+`` that steers SQLite's planner is dropped.
* ``group_concat`` is ``string_agg`` in the order of the rows: SQLite's is the order they
  come in, so a report that wants one reads an ordered subquery, whose order goes into
  ``string_agg(... ORDER BY ...)``; with ``DISTINCT`` PostgreSQL sorts (in bytes here), so
  SQLite must be fed sorted rows for the two to agree.
* ``date``, ``time``, ``datetime`` and ``strftime`` with literal modifiers (``'now'``,
  ``'+N day'``, ``'start of month'``, ``'+N month'`` with SQLite's overflow into the next
  month...) become ``to_char`` of a ``timestamp`` expression, in UTC. Unlike SQLite's, they
  raise on text that is not a date (SQLite returns NULL), and ignore a ``+HH:MM`` offset.

Used through :mod:`orchestrator.reports.postgres`, which keeps each translation on disk.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .sql_functions import POSTGRES as POSTGRES_FUNCTIONS


class UnsupportedSQL(ValueError):
    """The SQL uses something that has no exact PostgreSQL translation here."""


@dataclass(frozen=True)
class Translation:
    """A report's SQL in PostgreSQL's dialect; ``parameters[i]`` is ``$i+1``."""

    sql: str
    parameters: list[str]


# -- the translation -----------------------------------------------------------------------

#: Columns in the project's timestamp format: every collation orders them as bytes.
_TIMESTAMP_COLUMN = re.compile(r"^(day|.+_at)$")
_MODIFIER_SHIFT = re.compile(
    r"^\s*([+-]?)\s*(\d+(?:\.\d*)?)\s+(day|hour|minute|second|month|year)s?\s*$", re.I
)
_MODIFIER_START = re.compile(r"^\s*start\s+of\s+(day|month|year)\s*$", re.I)
#: strftime's conversions that to_char has, and to_char's pattern for each.
_STRFTIME = {
    "Y": "YYYY",
    "m": "MM",
    "d": "DD",
    "H": "HH24",
    "M": "MI",
    "S": "SS",
    "f": "SS.MS",
    "j": "DDD",
}
_DATE_FORMATS = {"DATE": "%Y-%m-%d", "TIME": "%H:%M:%S", "DATETIME": "%Y-%m-%d %H:%M:%S"}


def translate(sql: str) -> Translation:
    """``sql`` (SQLite, with ``:name`` parameters) in PostgreSQL's dialect.

    Raises :class:`UnsupportedSQL` for a construct without an exact translation, and
    sqlglot's ``ParseError`` for SQL it cannot parse.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    schema = _schema()
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
        if not isinstance(tree, exp.Query):
            raise UnsupportedSQL(f"not a query: {sql[:60]!r}")
        # Resolve every column as SQLite would (aliases in WHERE and GROUP BY, stars),
        # then type every expression from the schema.
        tree = qualify(
            tree, dialect="sqlite", schema=schema, quote_identifiers=False, identify=False
        )
        annotate_types(tree, schema=schema, dialect="sqlite")
    except sqlglot.errors.SqlglotError as exc:
        raise UnsupportedSQL(f"sqlglot cannot read the SQL: {exc}") from exc
    _check_supported(tree)
    _check_named(tree)
    _Rewriter().rewrite(tree)
    return _numbered(tree)


@functools.lru_cache(maxsize=1)
def _catalog() -> dict[str, list[tuple[str, str, bool]]]:
    """Every table's columns: name, declared type, and whether it holds no NULL (NOT NULL
    or primary key), from the SQLite migrations; PostgreSQL's mirror them (INTEGER as
    bigint, REAL as double precision) and forbid NULL in the same columns."""
    import sqlite3

    from ..store.sqlite import schema_sql

    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(schema_sql())
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '%fts%'"
            )
        ]
        return {
            table: [
                (row[1], row[2], bool(row[3] or row[5]))
                for row in conn.execute(f"PRAGMA table_info({table})")
            ]
            for table in tables
        }
    finally:
        conn.close()


def _schema() -> dict[str, object]:
    """The catalog as sqlglot's schema: table -> column -> type."""
    types = {"INTEGER": "BIGINT", "REAL": "DOUBLE"}
    return {
        table: {name: types.get(kind, kind or "TEXT") for name, kind, _ in columns}
        for table, columns in _catalog().items()
    }


def _not_null() -> dict[str, set[str]]:
    return {
        table: {name for name, _, not_null in columns if not_null}
        for table, columns in _catalog().items()
    }


def _numbered(tree: Any) -> Translation:
    """The tree as PostgreSQL, each ``:name`` parameter numbered ``$n`` (in order of first
    use) and typed text, as Datasette passes every parameter."""
    from sqlglot import exp

    names: list[str] = []
    for placeholder in list(tree.find_all(exp.Placeholder, bfs=False)):
        if placeholder.name not in names:
            names.append(placeholder.name)
        number = exp.Var(this=f"${names.index(placeholder.name) + 1}")
        placeholder.replace(exp.Cast(this=number, to=exp.DataType.build("TEXT")))
    return Translation(tree.sql(dialect="postgres"), names)


# Node types that mean the same on both engines once their children are translated, or
# that the rewriter below translates. Anything else is refused rather than guessed.
_SUPPORTED_NAMES = (
    "Abs Add Alias And Anonymous Avg Between Boolean Case Cast Coalesce Column Count CTE "
    "DataType Date Distinct Div DPipe EQ Escape Exists From Greatest Group GroupConcat "
    "GT GTE Having Identifier If Ifs In Is Join Lead Least Length Like Limit Literal Lower LT "
    "LTE Max Min Mul Neg NEQ Not Null Nullif NullSafeEQ NullSafeNEQ Or Order Ordered "
    "Paren Placeholder Round Select Star Sub Subquery Substring Sum Table TableAlias "
    "TimeToStr TsOrDsToTimestamp Tuple Union Upper When Where Window WindowSpec With"
)
_SUPPORTED = frozenset(_SUPPORTED_NAMES.split())


def _check_supported(tree: Any) -> None:
    for node in tree.walk():
        if type(node).__name__ not in _SUPPORTED:
            raise UnsupportedSQL(
                f"{type(node).__name__} ({node.sql(dialect='sqlite')[:60]!r}) has no "
                "exact PostgreSQL translation here"
            )


def _check_named(tree: Any) -> None:
    """SQLite names an unnamed result column after its text, which sqlglot does not keep:
    every result column must be a column or have a name (``AS ...``)."""
    from sqlglot import exp

    select = tree
    while not isinstance(select, exp.Select):
        select = select.left if isinstance(select, exp.SetOperation) else select.this
    for projection in select.expressions:
        if isinstance(projection, exp.Alias) and projection.alias.startswith("_col_"):
            raise UnsupportedSQL(
                f"name the result column {projection.this.sql('sqlite')!r} (AS ...): "
                "SQLite names it after its text"
            )


def _type_name(node: Any) -> str:
    kind = getattr(node, "type", None)
    return kind.this.name if kind is not None else "UNKNOWN"


def _is_text(node: Any) -> bool:
    return _type_name(node) in ("TEXT", "VARCHAR", "CHAR", "NCHAR", "NVARCHAR")


def _is_integer(node: Any) -> bool:
    return _type_name(node) in ("INT", "BIGINT", "SMALLINT", "TINYINT")


def _is_float(node: Any) -> bool:
    return _type_name(node) in ("DOUBLE", "FLOAT", "DECIMAL")


def _is_number(node: Any) -> bool:
    return _is_integer(node) or _is_float(node)


class _Rewriter:
    """Rewrites a qualified, typed sqlglot tree from SQLite's meaning to PostgreSQL's."""

    def __init__(self) -> None:
        from sqlglot import exp

        self.exp = exp

    # -- helpers ---------------------------------------------------------------------------

    def cast(self, node: Any, to: str) -> Any:
        exp = self.exp
        result = exp.Cast(this=node, to=exp.DataType.build(to, dialect="postgres"))
        result.type = exp.DataType.build(to, dialect="postgres")
        return result

    def collate_c(self, node: Any) -> Any:
        exp = self.exp
        collated = exp.Collate(this=node, expression=exp.Identifier(this="C", quoted=True))
        collated.type = node.type
        return collated

    def from_parameter(self, node: Any) -> bool:
        """Whether ``node`` is text SQLite reads as a number where one is needed: a
        parameter or a string literal, maybe in ``nullif(..., '')`` or parentheses."""
        exp = self.exp
        while isinstance(node, (exp.Paren, exp.Nullif)):
            node = node.this
        return isinstance(node, exp.Placeholder) or (
            isinstance(node, exp.Literal) and node.is_string
        )

    def is_timestamp(self, node: Any) -> bool:
        """A column in the project's timestamp format (directly or through an alias)."""
        exp = self.exp
        while isinstance(node, (exp.Alias, exp.Paren)):
            node = node.this
        return isinstance(node, exp.Column) and bool(_TIMESTAMP_COLUMN.match(node.name))

    def needs_collation(self, node: Any) -> bool:
        return _is_text(node) and not self.is_timestamp(node)

    def replace(self, old: Any, new: Any) -> Any:
        if new is not old:
            if getattr(new, "type", None) is None or _type_name(new) == "UNKNOWN":
                new.type = old.type
            old.replace(new)
        return new

    # -- the walk ----------------------------------------------------------------------------

    def rewrite(self, tree: Any) -> None:
        # Children before parents: each node sees its children already translated.
        for node in reversed(list(tree.walk())):
            handler = getattr(self, f"on_{type(node).__name__.lower()}", None)
            if handler is not None:
                handler(node)
        for node in reversed(list(tree.walk())):
            if isinstance(node, self.exp.Ordered):
                self.order_key(node)
        for node in list(tree.find_all(self.exp.GroupConcat)):
            self.concatenation_order(node)
        conditions = (self.exp.Predicate, self.exp.Connector, self.exp.Not, self.exp.Escape)
        for node in list(tree.walk()):
            if isinstance(node, conditions) and not isinstance(node.parent, self.exp.Escape):
                self.boolean_value(node)

    # -- literals and parameters -------------------------------------------------------------

    def on_literal(self, node: Any) -> None:
        # SQLite reads 1.0 as a double; PostgreSQL as numeric (exact arithmetic, Decimal).
        if not node.is_string and not node.is_int:
            parent = node.parent
            if isinstance(parent, self.exp.Neg):
                return  # the sign's parent handles it through on_neg
            self.replace(node, self.cast(node.copy(), "DOUBLE PRECISION"))

    def on_neg(self, node: Any) -> None:
        inner = node.this
        if isinstance(inner, self.exp.Literal) and not inner.is_string and not inner.is_int:
            self.replace(node, self.cast(node.copy(), "DOUBLE PRECISION"))

    def parameters_as(self, args: Sequence[Any], number_type: str) -> None:
        for arg in args:
            if self.from_parameter(arg):
                self.replace(arg, self.cast(arg.copy(), number_type))

    def number_type(self, args: Sequence[Any]) -> str | None:
        numbers = [a for a in args if _is_number(a)]
        if not numbers:
            return None
        return "DOUBLE PRECISION" if any(_is_float(a) for a in numbers) else "BIGINT"

    def on_coalesce(self, node: Any) -> None:
        args = [node.this, *node.expressions]
        kind = self.number_type(args)
        if kind is not None:
            self.parameters_as(args, kind)
            node.type = self.exp.DataType.build(kind, dialect="postgres")

    def on_comparison(self, node: Any) -> None:
        args = [node.this, node.expression]
        kind = self.number_type(args)
        if kind is not None:
            self.parameters_as(args, kind)
            return
        # Against a timestamp column (the reports' date windows), any collation agrees
        # with bytes, and the column's index still serves the range.
        if not any(self.is_timestamp(a) for a in args) and any(_is_text(a) for a in args):
            self.replace(node.this, self.collate_c(node.this.copy()))

    on_gt = on_gte = on_lt = on_lte = on_comparison

    def on_eq(self, node: Any) -> None:
        kind = self.number_type([node.this, node.expression])
        if kind is not None:
            self.parameters_as([node.this, node.expression], kind)

    on_neq = on_eq

    def on_between(self, node: Any) -> None:
        if self.needs_collation(node.this):
            self.replace(node.this, self.collate_c(node.this.copy()))

    def on_tuple(self, node: Any) -> None:
        # (a, b) > (c, d): the range comparison of each text element in bytes.
        parent = node.parent
        ranges = (self.exp.GT, self.exp.GTE, self.exp.LT, self.exp.LTE)
        if isinstance(parent, ranges) and parent.this is node:
            for item in list(node.expressions):
                if self.needs_collation(item):
                    self.replace(item, self.collate_c(item.copy()))

    def on_cte(self, node: Any) -> None:
        # A FROM-less CTE is one row of values (the reports' defaulted parameters, as in
        # ``WITH run AS (SELECT coalesce(nullif(:agent_id, ''), ...) AS id)``). Used twice,
        # PostgreSQL would materialize it and then cannot look its value up in an index;
        # inlined, it is a constant the planner uses, as SQLite does.
        if isinstance(node.this, self.exp.Select) and not node.this.args.get("from_"):
            node.set("materialized", False)

    def on_limit(self, node: Any) -> None:
        value = node.expression
        exp = self.exp
        if isinstance(value, exp.Literal) and value.is_int:
            return
        if isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal):
            self.replace(value, exp.Null())  # LIMIT -1: no limit
            return
        if self.from_parameter(value):
            value = self.replace(value, self.cast(value.copy(), "BIGINT"))
        # SQLite reads a negative limit as none; PostgreSQL refuses one.
        guarded = exp.Case(
            ifs=[
                exp.If(
                    this=exp.LT(this=value.copy(), expression=exp.Literal.number(0)),
                    true=exp.Null(),
                )
            ],
            default=value.copy(),
        )
        self.replace(value, guarded)

    # -- aggregates and functions --------------------------------------------------------------

    def on_sum(self, node: Any) -> None:
        if _is_float(node.this):
            return
        if not _is_integer(node.this):
            raise UnsupportedSQL(f"cannot tell whether {node.sql('sqlite')} sums integers")
        # SQLite's sum of integers is an integer; PostgreSQL's is numeric.
        target = node.parent if isinstance(node.parent, self.exp.Window) else node
        self.replace(target, self.cast(target.copy(), "BIGINT"))

    def on_avg(self, node: Any) -> None:
        target = node.parent if isinstance(node.parent, self.exp.Window) else node
        self.replace(target, self.cast(target.copy(), "DOUBLE PRECISION"))

    def on_min(self, node: Any) -> None:
        if self.needs_collation(node.this):
            self.replace(node.this, self.collate_c(node.this.copy()))

    on_max = on_min

    def on_greatest(self, node: Any) -> None:
        """SQLite's scalar max(a, b, ...): NULL if any argument is NULL (GREATEST skips them)."""
        exp = self.exp
        args = [node.this, *node.expressions]
        for arg in args:
            if self.needs_collation(arg):
                self.replace(arg, self.collate_c(arg.copy()))
        args = [node.this, *node.expressions]
        nullable = [a for a in args if not self.never_null(a)]
        if not nullable:
            return
        condition = exp.or_(*[exp.Is(this=a.copy(), expression=exp.Null()) for a in nullable])
        guarded = exp.Case(ifs=[exp.If(this=condition, true=exp.Null())], default=node.copy())
        self.replace(node, guarded)

    on_least = on_greatest

    def never_null(self, node: Any) -> bool:
        exp = self.exp
        while isinstance(node, (exp.Paren, exp.Cast)):
            node = node.this
        if isinstance(node, exp.Literal):
            return True
        if isinstance(node, exp.Coalesce):
            return any(self.never_null(a) for a in node.expressions)
        return isinstance(node, exp.Count)

    def on_round(self, node: Any) -> None:
        # PostgreSQL rounds numeric (half away from zero, as SQLite); it has no
        # round(double precision, int), and round(double precision) rounds half to even.
        exp = self.exp
        decimals = node.args.get("decimals")
        if decimals is None:
            digits = 0
        elif isinstance(decimals, exp.Literal) and decimals.is_int:
            digits = min(int(decimals.this), 30)  # SQLite's bounds
        elif isinstance(decimals, exp.Neg) and isinstance(decimals.this, exp.Literal):
            digits = 0  # SQLite rounds to 0 digits for any negative number
        else:
            raise UnsupportedSQL(f"round() needs a literal number of digits: {node.sql('sqlite')}")
        value = self.cast(node.this.copy(), "NUMERIC")
        rounded = exp.Anonymous(this="ROUND", expressions=[value, exp.Literal.number(digits)])
        self.replace(node, self.cast(rounded, "DOUBLE PRECISION"))

    def on_substring(self, node: Any) -> None:
        exp = self.exp
        start, length = node.args.get("start"), node.args.get("length")
        positive = isinstance(start, exp.Literal) and start.is_int and int(start.this) >= 1
        counted = length is None or (isinstance(length, exp.Literal) and length.is_int)
        text = _is_text(node.this) or _type_name(node.this) == "UNKNOWN"  # a CTE's column
        if not (positive and counted and text):
            raise UnsupportedSQL(
                f"substr() translates with text, a literal start >= 1 and a literal "
                f"length only: {node.sql('sqlite')}"
            )

    def on_length(self, node: Any) -> None:
        if not _is_text(node.this):
            raise UnsupportedSQL(f"length() of a non-text value: {node.sql('sqlite')}")

    def on_groupconcat(self, node: Any) -> None:
        exp = self.exp
        value = node.this
        distinct = isinstance(value, exp.Distinct)
        if distinct:
            if len(value.expressions) != 1:
                raise UnsupportedSQL(f"group_concat(DISTINCT ...) of one value: {node.sql()}")
            value = value.expressions[0]
        if _is_float(value):
            raise UnsupportedSQL(f"group_concat() of numbers formats them differently: {node}")
        text = value.copy() if _is_text(value) else self.cast(value.copy(), "TEXT")
        separator = node.args.get("separator") or exp.Literal.string(",")
        if distinct:
            # PostgreSQL sorts a DISTINCT aggregate's input: say so, in bytes.
            key = self.collate_c(text)
            ordered = exp.Order(
                this=exp.Distinct(expressions=[key]), expressions=[exp.Ordered(this=key.copy())]
            )
            new = exp.GroupConcat(this=ordered, separator=separator.copy())
        else:
            new = exp.GroupConcat(this=text, separator=separator.copy())
        new.type = exp.DataType.build("TEXT")
        self.replace(node, new)

    def concatenation_order(self, node: Any) -> None:
        """group_concat over an ordered subquery (``SELECT group_concat(x) FROM (SELECT x
        ... ORDER BY x)``) concatenates in that order in SQLite; say it in string_agg's
        ORDER BY, which PostgreSQL guarantees (a subquery's order it only keeps in
        practice)."""
        exp = self.exp
        if isinstance(node.this, exp.Order):
            return
        select = node.find_ancestor(exp.Select)
        source = select.args.get("from_") if select is not None else None
        inner = source.this if source is not None else None
        if not (
            isinstance(inner, exp.Subquery)
            and isinstance(inner.this, exp.Select)
            and inner.this.args.get("order")
            and not select.args.get("joins")
            and not select.args.get("group")
        ):
            return
        projections = self.projections(inner.this)
        keys = []
        for ordered in inner.this.args["order"].expressions:
            name = self.returned(ordered.this, projections)
            if name is None:
                return  # a key the subquery does not return: leave the order to it
            keys.append(
                exp.Ordered(
                    this=exp.column(name, table=inner.alias_or_name),
                    desc=ordered.args.get("desc"),
                    nulls_first=ordered.args.get("nulls_first"),
                )
            )
        node.set("this", exp.Order(this=node.this, expressions=keys))

    def returned(self, key: Any, projections: dict[str, Any]) -> str | None:
        """The name under which a subquery returns its sort key ``key``, if it does."""
        if isinstance(key, self.exp.Column) and not key.table and key.name in projections:
            return str(key.name)
        return next((name for name, p in projections.items() if p.this == key), None)

    def on_like(self, node: Any) -> None:
        # SQLite's LIKE folds ASCII letters only (lower() does under "C") and has no escape.
        exp = self.exp
        for side in (node.this, node.expression):
            self.replace(side, exp.Lower(this=self.collate_c(side.copy())))
        if not isinstance(node.parent, exp.Escape):
            self.replace(node, exp.Escape(this=node.copy(), expression=exp.Literal.string("")))

    def on_upper(self, node: Any) -> None:
        # SQLite changes the case of ASCII letters only, as PostgreSQL does under "C".
        if not _is_text(node.this):
            raise UnsupportedSQL(f"{node.key}() of a non-text value: {node.sql('sqlite')}")
        self.replace(node.this, self.collate_c(node.this.copy()))

    on_lower = on_upper

    def on_dpipe(self, node: Any) -> None:
        for side in (node.this, node.expression):
            if _is_float(side):
                raise UnsupportedSQL(f"|| formats numbers differently: {node.sql('sqlite')}")

    def on_cast(self, node: Any) -> None:
        exp = self.exp
        target = node.to.this
        value = node.this
        if target in exp.DataType.INTEGER_TYPES:
            # SQLite truncates toward zero and reads text's leading number; PostgreSQL rounds.
            if _is_integer(value):
                return
            source = value.copy() if _is_float(value) else self.cast(value.copy(), "NUMERIC")
            truncated = exp.Anonymous(this="TRUNC", expressions=[source])
            self.replace(node, self.cast(truncated, "BIGINT"))
        elif target == exp.DataType.Type.TEXT and _is_float(value):
            raise UnsupportedSQL(f"CAST of a number to text formats it differently: {node}")

    def on_anonymous(self, node: Any) -> None:
        name = str(node.this).upper()
        if name in POSTGRES_FUNCTIONS:
            self.replace(node, self.project_function(name, node.expressions))
        elif name == "JULIANDAY":
            self.replace(node, self.julianday(node.expressions))
        elif name in _DATE_FORMATS:
            self.replace(node, self.sqlite_time(_DATE_FORMATS[name], node.expressions))
        elif name == "STRFTIME":
            format_, *rest = node.expressions
            self.replace(node, self.sqlite_time(self.literal(format_), rest))
        else:
            raise UnsupportedSQL(f"function {name} has no PostgreSQL translation here")

    def on_date(self, node: Any) -> None:
        self.replace(node, self.sqlite_time("%Y-%m-%d", [node.this]))

    def on_timetostr(self, node: Any) -> None:
        value = node.this
        if isinstance(value, self.exp.TsOrDsToTimestamp):
            value = value.this
        self.replace(node, self.sqlite_time(self.literal(node.args["format"]), [value]))

    def literal(self, node: Any) -> str:
        if not (isinstance(node, self.exp.Literal) and node.is_string):
            raise UnsupportedSQL(f"expected a literal string, got {node.sql('sqlite')}")
        return str(node.this)

    def project_function(self, name: str, args: Sequence[Any]) -> Any:
        """One of :mod:`orchestrator.reports.sql_functions`' functions in PostgreSQL."""
        import sqlglot

        template = POSTGRES_FUNCTIONS[name]
        arity = 1 + max(int(number) for number in re.findall(r"\{(\d)\}", template))
        if len(args) != arity:
            raise UnsupportedSQL(f"{name.lower()}() takes {arity} arguments")
        markers = [f"__argument_{number}__" for number in range(len(args))]
        tree = sqlglot.parse_one(template.format(*markers), read="postgres")
        for column in list(tree.find_all(self.exp.Column)):
            if column.name in markers:
                argument = args[markers.index(column.name)]
                if self.from_parameter(argument) or _is_text(argument):
                    column.replace(argument.copy())
                else:
                    column.replace(self.cast(argument.copy(), "TEXT"))
        tree.type = self.exp.DataType.build("TEXT")
        return tree

    def julianday(self, args: Sequence[Any]) -> Any:
        """SQLite's julianday(value, modifiers...): days since noon UTC, 4714 BC."""
        exp = self.exp
        epoch = exp.Extract(this=exp.var("EPOCH"), expression=self.sqlite_stamp(args))
        days = exp.Div(
            this=self.cast(epoch, "DOUBLE PRECISION"), expression=exp.Literal.number(86400)
        )
        result = exp.Paren(this=exp.Add(this=days, expression=exp.Literal.number("2440587.5")))
        result.type = exp.DataType.build("DOUBLE PRECISION", dialect="postgres")
        return result

    def sqlite_time(self, format_: str, args: Sequence[Any]) -> Any:
        """SQLite's strftime(format_, value, modifiers...) as to_char of a timestamp."""
        exp = self.exp
        text = exp.Anonymous(
            this="TO_CHAR",
            expressions=[self.sqlite_stamp(args), exp.Literal.string(_to_char_format(format_))],
        )
        text.type = exp.DataType.build("TEXT")
        return text

    def sqlite_stamp(self, args: Sequence[Any]) -> Any:
        """SQLite's time value and modifiers as a PostgreSQL ``timestamp`` (UTC)."""
        exp = self.exp
        if not args:
            raise UnsupportedSQL("a date function without a time value")
        value, *modifiers = args
        if isinstance(value, exp.Literal) and value.is_string and value.this.lower() == "now":
            stamp: Any = exp.AtTimeZone(
                this=exp.Anonymous(this="NOW", expressions=[]), zone=exp.Literal.string("UTC")
            )
        elif (
            _is_text(value)
            or _type_name(value) == "UNKNOWN"  # a CTE's column sqlglot could not type
            or self.from_parameter(value)
            or isinstance(value, exp.Null)
            or (isinstance(value, exp.Literal) and value.is_string)
        ):
            # NULLIF: SQLite's date('') is NULL, PostgreSQL's cast of '' an error.
            empty = exp.Nullif(this=value.copy(), expression=exp.Literal.string(""))
            stamp = self.cast(empty, "TIMESTAMP")
        else:
            raise UnsupportedSQL(f"a date function of a non-text value: {value.sql('sqlite')}")
        for modifier in modifiers:
            stamp = self.modified(exp.Paren(this=stamp), self.literal(modifier))
        return stamp

    def modified(self, stamp: Any, modifier: str) -> Any:
        exp = self.exp
        start = _MODIFIER_START.match(modifier)
        if start:
            unit = exp.Literal.string(start[1].lower())
            return exp.Anonymous(this="DATE_TRUNC", expressions=[unit, stamp])
        shift = _MODIFIER_SHIFT.match(modifier)
        if not shift:
            raise UnsupportedSQL(f"date modifier {modifier!r} has no translation here")
        sign, amount, unit = shift[1] or "+", shift[2], shift[3].lower()
        interval = self.cast(exp.Literal.string(f"{sign}{amount} {unit}"), "INTERVAL")
        if unit not in ("month", "year"):
            return exp.Add(this=stamp, expression=interval)
        if "." in amount:
            raise UnsupportedSQL(f"date modifier {modifier!r}: months and years must be whole")
        # SQLite moves the month and lets an overflowing day run into the next month
        # (2026-01-31 +1 month = 2026-03-03); PostgreSQL would clamp it (2026-02-28).
        first = exp.Anonymous(this="DATE_TRUNC", expressions=[exp.Literal.string("month"), stamp])
        into_month = exp.Paren(this=exp.Sub(this=stamp.copy(), expression=first.copy()))
        return exp.Add(this=exp.Add(this=first, expression=interval), expression=into_month)

    # -- booleans and sort keys --------------------------------------------------------------

    def boolean_value(self, node: Any) -> None:
        """A condition used as a value (selected, summed, sorted) is 0 or 1 in SQLite."""
        exp = self.exp
        child, parent = node, node.parent
        while isinstance(parent, exp.Paren):
            child, parent = parent, parent.parent
        conditions = (
            exp.Where, exp.Having, exp.Join, exp.Connector, exp.Not, exp.Predicate, exp.Filter,
            exp.Escape,
        )  # fmt: skip
        if isinstance(parent, conditions) or (isinstance(parent, exp.If) and parent.this is child):
            return
        self.replace(node, self.cast(node.copy(), "INTEGER"))

    def order_key(self, ordered: Any) -> None:
        """A text sort key in bytes; aliases in a sort expression replaced (PostgreSQL
        reads only a bare alias as the result column)."""
        exp = self.exp
        key = ordered.this
        query = ordered.find_ancestor(exp.Select, exp.Union)
        if isinstance(ordered.parent, exp.Order) and isinstance(ordered.parent.parent, exp.Window):
            projections: dict[str, Any] = {}
        elif isinstance(query, exp.Union):
            projections = self.projections(query.left if hasattr(query, "left") else query.this)
        elif isinstance(query, exp.Select) and ordered.parent is query.args.get("order"):
            projections = self.projections(query)
        else:
            projections = {}
        target = None
        if isinstance(key, exp.Column) and not key.table and key.name in projections:
            target = projections[key.name]
        elif any(p.this == key for p in projections.values()):
            # The key is a result column's expression (needed as such by SELECT DISTINCT).
            target = next(p for p in projections.values() if p.this == key)
        elif isinstance(key, exp.Literal) and key.is_int and projections:
            target = list(projections.values())[int(key.this) - 1]
        if target is not None:
            self.nulls_where_indexes_have_them(ordered, target.this, query)
            if not self.needs_collation(target.this) or isinstance(target.this, exp.Collate):
                return
            if isinstance(query, exp.Select) and not query.args.get("distinct"):
                # Sort by the result column's expression in bytes; the column itself keeps
                # its collation (an outer query comparing it with an indexed column
                # would otherwise compare in "C" and lose the index).
                self.replace(key, self.collate_c(target.this.copy()))
                return
            # SELECT DISTINCT and UNION sort by result columns only: make the column itself
            # compare in bytes, and sort by its name.
            self.replace(target.this, self.collate_c(target.this.copy()))
            if not (isinstance(key, exp.Literal) and key.is_int):
                self.replace(key, exp.column(exp.to_identifier(target.alias)))
            return
        if projections and not isinstance(key, exp.Column):
            for column in list(key.find_all(exp.Column)):
                if not column.table and column.name in projections:
                    self.replace(column, exp.Paren(this=projections[column.name].this.copy()))
            key = ordered.this
        self.nulls_where_indexes_have_them(ordered, key, query)
        if self.needs_collation(key) and not isinstance(key, exp.Collate):
            self.replace(key, self.collate_c(key.copy()))

    def nulls_where_indexes_have_them(self, ordered: Any, key: Any, query: Any) -> None:
        """SQLite sorts NULLs first ascending, PostgreSQL last, so sqlglot says NULLS FIRST
        or LAST; but then a B-tree index (PostgreSQL's order) cannot serve the sort. A
        column that holds no NULL here sorts the same either way: say nothing."""
        exp = self.exp
        while isinstance(key, (exp.Collate, exp.Paren)):
            key = key.this
        column = isinstance(key, exp.Column) and isinstance(query, exp.Select)
        if column and self.never_null_in(key, query):
            ordered.set("nulls_first", bool(ordered.args.get("desc")))

    def never_null_in(self, column: Any, select: Any) -> bool:
        """Whether ``column`` holds no NULL in ``select``'s rows: a NOT NULL column of a
        table read in its FROM or an inner join, or one its WHERE says IS NOT NULL."""
        exp = self.exp
        where = select.args.get("where")
        if where is not None:
            for condition in (
                where.this.flatten() if isinstance(where.this, exp.And) else [where.this]
            ):
                if (
                    isinstance(condition, exp.Not)
                    and isinstance(condition.this, exp.Is)
                    and isinstance(condition.this.expression, exp.Null)
                    and condition.this.this == column
                ):
                    return True
        source = select.args.get("from_")
        sources = [source.this] if source is not None else []
        sources += [j.this for j in select.args.get("joins") or [] if not j.side]
        for table in sources:
            if isinstance(table, exp.Table) and table.alias_or_name == column.table:
                return column.name in _not_null().get(table.name, ())
        return False

    def projections(self, select: Any) -> dict[str, Any]:
        while not isinstance(select, self.exp.Select):
            select = select.this if not hasattr(select, "left") else select.left
        return {e.alias: e for e in select.expressions if isinstance(e, self.exp.Alias)}


def _to_char_format(format_: str) -> str:
    """An SQLite strftime format as a to_char pattern (literal text double-quoted)."""
    out: list[str] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            text = "".join(literal).replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'"{text}"')
            literal.clear()

    chars = iter(format_)
    for char in chars:
        if char != "%":
            literal.append(char)
            continue
        code = next(chars, "")
        if code == "%":
            literal.append("%")
        elif code in _STRFTIME:
            flush()
            out.append(_STRFTIME[code])
        else:
            raise UnsupportedSQL(f"strftime %{code} has no translation here")
    flush()
    return "".join(out)
