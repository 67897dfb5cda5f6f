"""New ids: UUID version 7 text, increasing within a process, unique across processes."""

from __future__ import annotations

import os
import time
import uuid

from orchestrator.core.ids import new_id


def test_new_ids_are_time_ordered_uuid7_text() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    for text in ids:
        value = uuid.UUID(text)
        assert str(value) == text  # canonical text
        assert value.version == 7 and value.variant == uuid.RFC_4122
        assert before <= value.int >> 80 <= after + 1  # unix_ts_ms (a spent counter borrows 1)


def test_a_forked_child_draws_its_own_random_bits() -> None:
    """Random bits are drawn from the OS a page at a time; a child forked with part of a
    page left must not reuse it (same millisecond, same counter: the same id)."""
    new_id()  # a page drawn, most of it left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, ",".join(new_id() for _ in range(50)).encode())
        os._exit(0)
    mine = [new_id() for _ in range(50)]
    os.waitpid(pid, 0)
    theirs = os.read(read, 1 << 16).decode().split(",")
    os.close(read)
    os.close(write)
    assert len(theirs) == 50
    random_part = {text[19:] for text in mine}  # variant and rand_b
    assert not random_part & {text[19:] for text in theirs}
