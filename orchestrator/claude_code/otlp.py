"""OTLP/HTTP request bodies read into plain values: the parse layer of ``orchestrator collect``.

Pure functions, no database: a body (gzip or not, ``application/json`` or
``application/x-protobuf``, decoded by the official ``opentelemetry-proto`` messages) becomes
the :class:`Event` records of its log records and the :class:`Point` records of its metrics'
data points. Protobuf is turned into the OTLP/JSON shape first (``json_format``), so one
reader serves both encodings. Whatever is not an OTLP request of the expected shape (not
JSON, not the message, an attribute of a wrong type, a body past the size limit, a gzip
bomb) raises :class:`BadRequest` naming where and what, before anything is stored.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

#: The largest body taken, compressed or not (bytes): Claude Code's batches are a few KB.
MAX_BODY = 16 * 1024 * 1024

KINDS = ("logs", "metrics", "traces")
#: Claude Code names its events ``claude_code.<name>`` (the log record's body).
EVENT_PREFIX = "claude_code."


class BadRequest(ValueError):
    """A request that cannot be stored; the message says where and why (the 400's text)."""


@dataclass
class Event:
    """One log record of Claude Code: ``claude_code.<name>`` of session ``session_id``."""

    name: str  # without the claude_code. prefix: api_request, tool_result...
    at: str  # the project's timestamp format
    session_id: str
    attributes: dict[str, Any]  # the record's own (session.id, model, tokens...)
    resource: dict[str, Any]  # the resource's (service.*, OTEL_RESOURCE_ATTRIBUTES)
    #: The record's own time (or its observed time) in Unix milliseconds; None when it
    #: has neither and ``at`` is when it was received (not the same in a retry).
    ms: int | None = None


@dataclass
class Point:
    """One metric data point: its day, name, unit, value and every attribute."""

    day: str
    name: str
    unit: str | None
    value: float
    cumulative: bool  # a cumulative sum or a gauge: the day keeps the last value
    attributes: dict[str, Any]


@dataclass
class Parsed:
    """What one request holds: events, points, and what was refused (partial success)."""

    events: list[Event] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    spans: int = 0

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < 3:
            self.reasons.append(reason)


# -- bodies -----------------------------------------------------------------------------


def decompress(body: bytes, encoding: str | None, limit: int = MAX_BODY) -> bytes:
    """The body without its ``Content-Encoding`` (gzip or none), at most ``limit`` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        data = body
    elif encoding == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            data = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BadRequest(f"body: not valid gzip ({exc})") from None
        if len(data) > limit or inflater.unconsumed_tail:
            raise BadRequest(f"body: more than {limit} bytes once decompressed")
        if not inflater.eof:
            raise BadRequest("body: gzip stream cut short")
    else:
        raise BadRequest(f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    if len(data) > limit:
        raise BadRequest(f"body: more than {limit} bytes")
    return data


def is_protobuf(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` names protobuf (else JSON); raises on anything else."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/x-protobuf":
        return True
    if kind == "application/json":
        return False
    raise BadRequest(
        f"Content-Type {content_type!r} is not supported "
        "(application/json or application/x-protobuf)"
    )


_MODULES = {
    "logs": "opentelemetry.proto.collector.logs.v1.logs_service_pb2",
    "metrics": "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2",
    "traces": "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
}


def _message(kind: str) -> Any:
    """An empty Export*ServiceRequest of the official ``opentelemetry-proto`` package."""
    import importlib

    name = {"logs": "Logs", "metrics": "Metrics", "traces": "Trace"}[kind]
    return getattr(importlib.import_module(_MODULES[kind]), f"Export{name}ServiceRequest")()


def decode(kind: str, data: bytes) -> Any:
    """A protobuf body as its Export*ServiceRequest message."""
    from google.protobuf.message import DecodeError

    message = _message(kind)
    try:
        message.ParseFromString(data)
    except (DecodeError, RecursionError) as exc:
        raise BadRequest(f"body: not an OTLP {kind} protobuf message ({exc})") from None
    return message


def load(kind: str, data: bytes, protobuf: bool) -> dict[str, Any]:
    """The request as OTLP/JSON values (protobuf converted by ``json_format``)."""
    if protobuf:
        from google.protobuf import json_format

        value: Any = json_format.MessageToDict(decode(kind, data))
    else:
        import orjson  # several times json's speed: parsing was a third of a request's time

        try:
            value = orjson.loads(data)
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"body: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise BadRequest(f"body: an OTLP {kind} request is a JSON object")
    return value


def response_body(kind: str, protobuf: bool, parsed: Parsed) -> bytes:
    """The Export*ServiceResponse: empty, or a partial success counting what was refused."""
    rejected_field = {"logs": "rejectedLogRecords", "metrics": "rejectedDataPoints"}.get(
        kind, "rejectedSpans"
    )
    rejected = parsed.spans if kind == "traces" else parsed.rejected
    answer: dict[str, Any] = {}
    if rejected:
        reasons = parsed.reasons or ["traces are not stored"]
        answer["partialSuccess"] = {rejected_field: rejected, "errorMessage": "; ".join(reasons)}
    if not protobuf:
        return json.dumps(answer).encode()
    if not answer:
        return b""
    import importlib

    from google.protobuf import json_format

    module = importlib.import_module(_MODULES[kind])
    name = {"logs": "Logs", "metrics": "Metrics", "traces": "Trace"}[kind]
    message = getattr(module, f"Export{name}ServiceResponse")()
    json_format.ParseDict(answer, message)
    return bytes(message.SerializeToString())


# -- values -----------------------------------------------------------------------------


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{where}: must be a list, not {type(value).__name__}")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: must be an object, not {type(value).__name__}")
    return value


def _integer(value: Any, where: str) -> int:
    """An OTLP int64 (a JSON number or, as protobuf's JSON mapping writes it, text)."""
    if type(value) is int:
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    if type(value) is float and value.is_integer():
        return int(value)
    raise BadRequest(f"{where}: must be an integer, got {value!r:.60}")


def _double(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise BadRequest(f"{where}: must be a number, got {value!r:.60}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise BadRequest(f"{where}: must be a number, got {value!r:.60}") from None
    else:
        raise BadRequest(f"{where}: must be a number, got {value!r:.60}")
    if not math.isfinite(number):
        raise BadRequest(f"{where}: must be a finite number, got {value!r:.60}")
    return number


def any_value(value: Any, where: str) -> Any:
    """An OTLP AnyValue as a Python value (str, bool, int, float, list, dict, None)."""
    value = _object(value, where)
    if not value:
        return None
    if len(value) != 1:
        raise BadRequest(f"{where}: an AnyValue holds one value, got {sorted(value)}")
    ((kind, inner),) = value.items()
    if kind == "stringValue":
        if not isinstance(inner, str):
            raise BadRequest(f"{where}.stringValue: must be a string, got {inner!r:.60}")
        return inner
    if kind == "boolValue":
        if not isinstance(inner, bool):
            raise BadRequest(f"{where}.boolValue: must be true or false, got {inner!r:.60}")
        return inner
    if kind == "intValue":
        return _integer(inner, f"{where}.intValue")
    if kind == "doubleValue":
        return _double(inner, f"{where}.doubleValue")
    if kind == "arrayValue":
        values = _list(_object(inner, f"{where}.arrayValue").get("values"), where)
        return [any_value(v, f"{where}.arrayValue.values[{i}]") for i, v in enumerate(values)]
    if kind == "kvlistValue":
        return attributes(_object(inner, where).get("values"), f"{where}.kvlistValue.values")
    if kind == "bytesValue":
        if not isinstance(inner, str):
            raise BadRequest(f"{where}.bytesValue: must be base64 text")
        try:
            return base64.b64decode(inner, validate=True).hex()
        except ValueError:
            raise BadRequest(f"{where}.bytesValue: not base64") from None
    raise BadRequest(f"{where}: unknown AnyValue kind {kind!r:.40}")


def attributes(value: Any, where: str) -> dict[str, Any]:
    """A list of KeyValue as a dict."""
    found: dict[str, Any] = {}
    if type(value) is not list:
        return attributes(_list(value, where), where) if value is not None else found
    for at, item in enumerate(value):
        # The common case first, without a check per call: a string key and a string,
        # integer or boolean value (what Claude Code sends); anything else, and every
        # error, goes the long way below.
        if type(item) is dict:
            key = item.get("key")
            inner = item.get("value")
            if type(key) is str and type(inner) is dict and len(inner) == 1:
                if type(text := inner.get("stringValue")) is str:
                    found[key] = text
                    continue
                if type(number := inner.get("intValue")) is int or (
                    type(number) is str and number.isascii() and number.isdigit()
                ):
                    found[key] = int(number)
                    continue
                if type(flag := inner.get("boolValue")) is bool:
                    found[key] = flag
                    continue
        item = _object(item, f"{where}[{at}]")
        key = item.get("key")
        if not isinstance(key, str):
            raise BadRequest(f"{where}[{at}].key: must be a string, got {key!r:.60}")
        found[key] = any_value(item.get("value"), f"{where}[{at}].value")
    return found


def nanos_time(value: Any, where: str) -> datetime | None:
    """A ``*UnixNano`` time (0 or absent: None)."""
    if value is None:
        return None
    nanos = _integer(value, where)
    if nanos <= 0:
        return None
    try:
        return datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise BadRequest(f"{where}: not a time, got {value!r:.60}") from None


def stamp(when: datetime) -> str:
    """``when``'s own fields as the project's timestamp (strftime's text: a third of the
    cost; a year before 1000, which %Y does not pad, still by strftime)."""
    if when.year < 1000:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return (
        f"{when.year}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:"
        f"{when.second:02d}.{when.microsecond // 1000:03d}Z"
    )


# -- requests ---------------------------------------------------------------------------


def parse_logs(payload: dict[str, Any], now: datetime | None = None) -> Parsed:
    """The Claude Code events of an ExportLogsServiceRequest. A record that is no Claude
    Code event (its body not ``claude_code.*``) or has no ``session.id`` is refused
    (counted in the partial success); one of a wrong shape fails the whole request."""
    parsed = Parsed()
    for r, resource_logs in enumerate(_list(payload.get("resourceLogs"), "resourceLogs")):
        where = f"resourceLogs[{r}]"
        resource_logs = _object(resource_logs, where)
        resource = attributes(
            _object(resource_logs.get("resource"), f"{where}.resource").get("attributes"),
            f"{where}.resource.attributes",
        )
        for s, scope in enumerate(_list(resource_logs.get("scopeLogs"), f"{where}.scopeLogs")):
            at = f"{where}.scopeLogs[{s}]"
            scope = _object(scope, at)
            for n, record in enumerate(_list(scope.get("logRecords"), f"{at}.logRecords")):
                event = _event(record, f"{at}.logRecords[{n}]", resource, parsed, now)
                if event is not None:
                    parsed.events.append(event)
    return parsed


def _event(
    record: Any, where: str, resource: dict[str, Any], parsed: Parsed, now: datetime | None
) -> Event | None:
    record = _object(record, where)
    attrs = attributes(record.get("attributes"), f"{where}.attributes")
    body = any_value(record.get("body"), f"{where}.body")
    return _claude_code_event(
        where,
        attrs,
        body,
        record.get("timeUnixNano"),
        record.get("observedTimeUnixNano"),
        resource,
        parsed,
        now,
    )


def _claude_code_event(
    where: str,
    attrs: dict[str, Any],
    body: Any,
    nanos: Any,
    observed_nanos: Any,
    resource: dict[str, Any],
    parsed: Parsed,
    now: datetime | None,
) -> Event | None:
    """A log record read (JSON or protobuf) as a Claude Code event, or refused (None)."""
    name = body if isinstance(body, str) else None
    if name is None or not name.startswith(EVENT_PREFIX):
        event_name = attrs.get("event.name")
        name = f"{EVENT_PREFIX}{event_name}" if isinstance(event_name, str) else name
    if not isinstance(name, str) or not name.startswith(EVENT_PREFIX):
        parsed.reject(f"{where}: not a Claude Code event (body {str(body)!r:.60})")
        return None
    session = attrs.get("session.id", resource.get("session.id"))
    if not isinstance(session, str) or not session:
        parsed.reject(f"{where}: {name} without a session.id")
        return None
    global _last_time
    last_nanos, at, ms = _last_time
    if nanos != last_nanos or type(nanos) is not type(last_nanos):
        when = nanos_time(nanos, f"{where}.timeUnixNano")
        own = when is not None  # the record's time, not its observed one: kept for the next
        if not own:
            nanos = observed_nanos
            when = nanos_time(observed_nanos, f"{where}.observedTimeUnixNano")
        if when is not None:
            at = stamp(when)
            ms = int(nanos) // 1_000_000
            if own and type(nanos) in (str, int):
                _last_time = (nanos, at, ms)
        else:
            at, ms = stamp(now or datetime.now(timezone.utc)), None
    return Event(name[len(EVENT_PREFIX) :], at, session, attrs, resource, ms)


#: The last record's time as received and as stamped: a call's request and response, and
#: the records of one moment, share it (one entry, replaced whole: threads may read it).
_last_time: tuple[Any, str, int | None] = (object(), "", None)  # matches no time received


# -- protobuf logs, read from the message itself ----------------------------------------
# (json_format.MessageToDict first made protobuf bodies five times as costly as JSON ones:
# a dict per value, int64s as text. The values and names read are the same.)


def _pb_value(value: Any, where: str) -> Any:
    """An AnyValue message as a Python value (as :func:`any_value` reads its JSON)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return None
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return _double(value.double_value, f"{where}.doubleValue")
    if kind == "array_value":
        return [
            _pb_value(item, f"{where}.arrayValue.values[{at}]")
            for at, item in enumerate(value.array_value.values)
        ]
    if kind == "kvlist_value":
        return _pb_attributes(value.kvlist_value.values, f"{where}.kvlistValue.values")
    if kind == "bytes_value":
        return bytes(value.bytes_value).hex()
    raise BadRequest(f"{where}: unknown AnyValue kind {kind!r:.40}")


def _pb_attributes(items: Any, where: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for at, item in enumerate(items):
        value = item.value
        if value.WhichOneof("value") == "string_value":
            found[item.key] = value.string_value
        else:
            found[item.key] = _pb_value(value, f"{where}[{at}].value")
    return found


def parse_logs_message(message: Any, now: datetime | None = None) -> Parsed:
    """:func:`parse_logs` of an ExportLogsServiceRequest message (a protobuf body)."""
    parsed = Parsed()
    for r, resource_logs in enumerate(message.resource_logs):
        where = f"resourceLogs[{r}]"
        resource = _pb_attributes(resource_logs.resource.attributes, f"{where}.resource.attributes")
        for s, scope in enumerate(resource_logs.scope_logs):
            at = f"{where}.scopeLogs[{s}]"
            for n, record in enumerate(scope.log_records):
                record_at = f"{at}.logRecords[{n}]"
                event = _claude_code_event(
                    record_at,
                    _pb_attributes(record.attributes, f"{record_at}.attributes"),
                    _pb_value(record.body, f"{record_at}.body"),
                    record.time_unix_nano,
                    record.observed_time_unix_nano,
                    resource,
                    parsed,
                    now,
                )
                if event is not None:
                    parsed.events.append(event)
    return parsed


_TEMPORALITY = {1: "delta", 2: "cumulative"}


def parse_metrics(payload: dict[str, Any], now: datetime | None = None) -> Parsed:
    """The data points of an ExportMetricsServiceRequest (sums and gauges; a histogram's
    sum), each with its resource's attributes and its own."""
    parsed = Parsed()
    for r, resource_metrics in enumerate(_list(payload.get("resourceMetrics"), "resourceMetrics")):
        where = f"resourceMetrics[{r}]"
        resource_metrics = _object(resource_metrics, where)
        resource = attributes(
            _object(resource_metrics.get("resource"), f"{where}.resource").get("attributes"),
            f"{where}.resource.attributes",
        )
        scopes = _list(resource_metrics.get("scopeMetrics"), f"{where}.scopeMetrics")
        for s, scope in enumerate(scopes):
            at = f"{where}.scopeMetrics[{s}]"
            for m, metric in enumerate(_list(_object(scope, at).get("metrics"), f"{at}.metrics")):
                _metric(metric, f"{at}.metrics[{m}]", resource, parsed, now)
    return parsed


def _metric(
    metric: Any, where: str, resource: dict[str, Any], parsed: Parsed, now: datetime | None
) -> None:
    metric = _object(metric, where)
    name = metric.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}.name: must be a non-empty string, got {name!r:.60}")
    unit = metric.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise BadRequest(f"{where}.unit: must be a string, got {unit!r:.60}")
    for kind in ("sum", "gauge", "histogram", "exponentialHistogram", "summary"):
        if kind in metric:
            break
    else:
        parsed.reject(f"{where}: metric {name!r:.60} holds no data")
        return
    data = _object(metric[kind], f"{where}.{kind}")
    temporality = data.get("aggregationTemporality", 1 if kind != "gauge" else 0)
    if isinstance(temporality, str):  # protobuf's JSON mapping names the enum
        temporality = 2 if temporality.endswith("CUMULATIVE") else 1
    cumulative = kind in ("gauge", "summary") or temporality == 2
    for p, point in enumerate(_list(data.get("dataPoints"), f"{where}.{kind}.dataPoints")):
        at = f"{where}.{kind}.dataPoints[{p}]"
        point = _object(point, at)
        if kind in ("sum", "gauge"):
            if "asDouble" in point:
                value = _double(point["asDouble"], f"{at}.asDouble")
            elif "asInt" in point:
                value = float(_integer(point["asInt"], f"{at}.asInt"))
            else:
                value = 0.0
        else:
            value = _double(point.get("sum", 0), f"{at}.sum")
        when = nanos_time(point.get("timeUnixNano"), f"{at}.timeUnixNano") or now
        when = when or datetime.now(timezone.utc)
        attrs = {**resource, **attributes(point.get("attributes"), f"{at}.attributes")}
        parsed.points.append(Point(when.date().isoformat(), name, unit, value, cumulative, attrs))


def parse_traces(payload: dict[str, Any]) -> Parsed:
    """Traces are answered, not stored: the spans are counted as refused."""
    parsed = Parsed()
    for r, spans in enumerate(_list(payload.get("resourceSpans"), "resourceSpans")):
        where = f"resourceSpans[{r}]"
        for s, scope in enumerate(
            _list(_object(spans, where).get("scopeSpans"), f"{where}.scopeSpans")
        ):
            at = f"{where}.scopeSpans[{s}]"
            parsed.spans += len(_list(_object(scope, at).get("spans"), f"{at}.spans"))
    return parsed


def parse(
    kind: str,
    body: bytes,
    content_type: str | None,
    encoding: str | None,
    limit: int = MAX_BODY,
    now: datetime | None = None,
) -> tuple[Parsed, bool]:
    """A request's body read whole: (what it holds, whether it was protobuf)."""
    if kind not in KINDS:
        raise BadRequest(f"no OTLP signal {kind!r}")
    protobuf = is_protobuf(content_type)
    data = decompress(body, encoding, limit)
    if protobuf and kind == "logs":
        return parse_logs_message(decode(kind, data), now), protobuf
    payload = load(kind, data, protobuf)
    if kind == "logs":
        return parse_logs(payload, now), protobuf
    if kind == "metrics":
        return parse_metrics(payload, now), protobuf
    return parse_traces(payload), protobuf
