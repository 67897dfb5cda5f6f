"""Claude Code's own records, read into the database: the importers of its data.

* :mod:`~orchestrator.claude_code.transcripts`: session transcripts
  (``~/.claude/projects/**/*.jsonl``), imported incrementally, with per-day token
  totals equal to ccusage's (:func:`import_transcripts`, :func:`daily_tokens`).
* :mod:`~orchestrator.claude_code.stream_json`: a ``claude -p --output-format
  stream-json --verbose`` run, recorded live as it streams (:class:`StreamRecorder`,
  :func:`record_command`) or from a saved file (:func:`record_stream`).
* :mod:`~orchestrator.claude_code.hook` (``python -m orchestrator.claude_code.hook``, what
  ``orchestrator hooks install`` registers) and :mod:`~orchestrator.claude_code.collect`
  (its OpenTelemetry export, read by :mod:`~orchestrator.claude_code.otlp`): a session
  stored as it runs.
* :mod:`~orchestrator.claude_code.cli`: the ``orchestrator record``, ``hooks`` and
  ``orchestrator import stream-json`` / ``import claude-code`` commands over them.

May import: ``orchestrator.core``, ``store``, ``writer``, ``reports`` and ``commands``;
``cli`` (the CLI layer) also ``orchestrator.cli_options``. Nothing is imported here on
import but the lazy table below.
"""

# The public names are imported on first use (PEP 562), as in ``orchestrator``: the CLI
# imports this package to register its commands, and start-up must not pay for the
# writer, pydantic models and genai-prices (``orchestrator --help``, an unchanged import).
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_PUBLIC = {
    "ImportSummary": "transcripts",
    "StreamRecorder": "stream_json",
    "StreamSummary": "stream_json",
    "claude_config_dirs": "transcripts",
    "daily_tokens": "transcripts",
    "import_transcripts": "transcripts",
    "record_command": "stream_json",
    "record_stream": "stream_json",
    "transcript_files": "transcripts",
}

if TYPE_CHECKING:
    from .stream_json import StreamRecorder, StreamSummary, record_command, record_stream
    from .transcripts import (
        ImportSummary,
        claude_config_dirs,
        daily_tokens,
        import_transcripts,
        transcript_files,
    )


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())


__all__ = sorted(_PUBLIC)
