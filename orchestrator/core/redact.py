"""Redaction of secrets that end up in prompts, responses and logs by accident.

Well-known token formats are replaced by ``[REDACTED:<kind>]`` before a value
is stored. The patterns are deliberately specific (prefix plus length), so
ordinary prose and code are left alone; ``key=value`` pairs whose key names a
secret (password, token, api_key, ...) keep the key and lose the value.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

# (kind, literal hints of which one must occur, pattern). The hints are
# plain substring tests, far cheaper than running the regex over every message.
_PATTERNS: list[tuple[str, tuple[str, ...], str]] = [
    (
        "private_key",
        ("PRIVATE KEY",),
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?"
        r"(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\Z)",
    ),
    ("anthropic", ("sk-ant-",), r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai", ("sk-",), r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    (
        "aws_access_key",
        ("AKIA", "ASIA", "ABIA", "ACCA"),
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
    ),
    (
        "github",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
    ),
    ("slack", ("xox",), r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("slack_webhook", ("hooks.slack.com",), r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+"),
    ("google_api_key", ("AIza",), r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("jwt", ("eyJ",), r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),
]

# The password of a URL's user info: scheme://user:password@host keeps user and host.
_URL_PASSWORD = r"(?P<key>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@]*:)(?P<value>[^\s/@]+)@"

# key=value / key: value / "key": "value" where the key names a secret.
_SECRET_KEYS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "client_secret",
    "secret_key",
    "aws_secret_access_key",
    r"api[_\-]?key",
    r"access[_\-]?token",
    r"auth[_\-]?token",
    r"refresh[_\-]?token",
    "token",
    "bearer",
)
_SECRET_KEY = "(?:" + "|".join(_SECRET_KEYS) + ")"
_SEPARATOR = r"[\"']?\s*[:=]"
_PAIR = (
    r"(?P<key>" + _SECRET_KEY + _SEPARATOR + r"\s*)"
    r"(?P<value>\"[^\"\n]+\"|'[^'\n]+'|[^\s,;&\"'}]+)"
)
_BEARER = r"(?P<key>\bAuthorization:\s*Bearer\s+)(?P<value>[A-Za-z0-9._~+/\-]{8,}=*)"
# The characters IGNORECASE matches to an ASCII letter that str.lower() does not turn
# into it: dotless i, long s, and the combining dot lower() leaves after "i" for "İ".
_FOLDS = (("\u0131", "i"), ("\u017f", "s"), ("\u0307", ""))
_SECRET_KEY_NAME = r"^[A-Za-z0-9_\-]*" + _SECRET_KEY + r"$"


class _Compiled(NamedTuple):
    tokens: list[tuple[tuple[str, ...], re.Pattern[str], str]]
    url_password: re.Pattern[str]
    pair: re.Pattern[str]
    bearer: re.Pattern[str]
    # Whether _PAIR can match at all, asked cheaply of the text lower-cased (_folded):
    # each key ends in one of these words, found with str.find, then the separator
    # (after_key). Scanning for _PAIR itself (alternatives tried at every character,
    # ignoring case) costs ~30x more, and most texts naming a key ("max_tokens",
    # "keyword") have no pair to redact.
    key_endings: list[str]
    after_key: re.Pattern[str]
    secret_key_name: re.Pattern[str]


@functools.cache
def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``pattern`` compiled on first use, each on its own: a process that meets no hint
    of a token (a hook call, a report) compiles none of them (all: ~15 ms)."""
    return re.compile(pattern, flags)


@functools.cache
def _key_endings() -> list[str]:
    return sorted({re.findall("[a-z]+$", key)[0] for key in _SECRET_KEYS})


def compiled() -> _Compiled:
    """Every pattern, compiled (each once per process)."""
    return _Compiled(
        tokens=[
            (hints, _compile(pattern), f"[REDACTED:{kind}]") for kind, hints, pattern in _PATTERNS
        ],
        url_password=_compile(_URL_PASSWORD),
        pair=_compile(_PAIR, re.IGNORECASE),
        bearer=_compile(_BEARER, re.IGNORECASE),
        key_endings=_key_endings(),
        after_key=_compile(_SEPARATOR),
        secret_key_name=_compile(_SECRET_KEY_NAME, re.IGNORECASE),
    )


REDACTED = "[REDACTED]"


def _pair(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.startswith("[REDACTED"):
        return match.group(0)
    quote = value[0] if value[0] in "\"'" else ""
    # keep the quotes, so redacting a JSON document leaves valid JSON
    return match.group("key") + quote + REDACTED + quote


def redact_text(text: str) -> str:
    """Return ``text`` with every recognised secret replaced."""
    # Short texts are remembered: importers meet the same prompt once per response of a
    # turn (Claude Code writes several), the same model and tool names over and over.
    if len(text) <= _MEMO_LIMIT:
        return _redact_remembered(text)
    return _redact_text(text)


def _redact_text(text: str) -> str:
    for kind, hints, pattern in _PATTERNS:
        for hint in hints:
            if hint in text:
                text = _compile(pattern).sub(f"[REDACTED:{kind}]", text)
                break
    if "://" in text and "@" in text:
        text = _compile(_URL_PASSWORD).sub(lambda m: f"{m.group('key')}{REDACTED}@", text)
    folded = _folded(text)
    if "authorization:" in folded and "bearer" in folded:
        text = _compile(_BEARER, re.IGNORECASE).sub(_pair, text)
    if _may_hold_pair(folded):
        text = _compile(_PAIR, re.IGNORECASE).sub(_pair, text)
    return text


#: The longest text remembered (importers clip theirs to 4,000 characters): with its
#: redaction, 256 of them hold 4 MB of ASCII text at most.
_MEMO_LIMIT = 8_192
_redact_remembered = functools.lru_cache(maxsize=256)(_redact_text)


def _may_hold_pair(folded: str) -> bool:
    """Whether a key's last word followed by a separator occurs in ``folded`` (as it must
    wherever _PAIR matches)."""
    after_key = _compile(_SEPARATOR)
    for ending in _key_endings():
        at = folded.find(ending)
        while at >= 0:
            if after_key.match(folded, at + len(ending)):
                return True
            at = folded.find(ending, at + 1)
    return False


def _folded(text: str) -> str:
    """``text`` lower-cased so that wherever the case-insensitive _BEARER or _PAIR matches
    ``text``, their lower-case key matches it case-sensitively: a cheap test of whether
    they can match at all. (The secret's value and a cleared _BEARER never add a key.)"""
    lower = text.lower()
    if not lower.isascii():
        for char, letter in _FOLDS:
            if char in lower:
                lower = lower.replace(char, letter)
    return lower


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    """Whether a dict key names a secret: remembered, keys repeat (a tool's argument names,
    an event's attributes) and the pattern costs microseconds each time."""
    return _compile(_SECRET_KEY_NAME, re.IGNORECASE).match(key) is not None


@functools.lru_cache(maxsize=1024)
def _key_facts(key: str) -> tuple[str, bool]:
    """A dict key redacted, and whether it names a secret: one remembered look-up per key
    (collect redacts each event's metadata dict, its ~15 keys the same every time)."""
    return redact_text(key), _is_secret_key(key)


def redact(value: Any) -> Any:
    """Redact strings anywhere inside ``value`` (dicts, lists, tuples, strings).

    A dict entry whose key names a secret (``password``, ``api_key``...) loses its
    value whatever the value looks like; a key that is itself a secret is redacted.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        found: dict[Any, Any] = {}
        facts = _key_facts
        for key, item in value.items():
            if isinstance(key, str):
                shown, secret = facts(key) if len(key) <= 256 else _key_facts.__wrapped__(key)
                if secret and isinstance(item, (str, int, float)) and not isinstance(item, bool):
                    found[shown] = REDACTED
                elif type(item) is str:
                    found[shown] = redact_text(item)
                else:
                    found[shown] = redact(item)
            else:
                found[key] = redact(item)
        return found
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value
