"""What the tables' columns hold, checked without pydantic."""

from __future__ import annotations

import re
from typing import Any

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_canonical_uuid(value: Any) -> bool:
    """Whether ``value`` is a UUID's canonical text (36 characters, lowercase): what
    ``str(uuid.UUID(value))`` gives back unchanged, without parsing it."""
    return type(value) is str and _CANONICAL_UUID.fullmatch(value) is not None
