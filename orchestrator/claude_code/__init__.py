"""Claude Code's own records, read into the database: the importers of its data.

* :mod:`~orchestrator.claude_code.transcripts`: session transcripts
  (``~/.claude/projects/**/*.jsonl``), imported incrementally, with per-day token
  totals equal to ccusage's (:func:`import_transcripts`, :func:`daily_tokens`).
* :mod:`~orchestrator.claude_code.stream_json`: a ``claude -p --output-format
  stream-json --verbose`` run, recorded live as it streams (:class:`StreamRecorder`,
  :func:`record_command`) or from a saved file (:func:`record_stream`).
* :mod:`~orchestrator.claude_code.cli`: the ``orchestrator record`` and
  ``orchestrator import stream-json`` / ``import claude-code`` commands over them.
"""

from .stream_json import StreamRecorder, StreamSummary, record_command, record_stream
from .transcripts import (
    ImportSummary,
    claude_config_dirs,
    daily_tokens,
    import_transcripts,
    transcript_files,
)

__all__ = [
    "ImportSummary",
    "StreamRecorder",
    "StreamSummary",
    "claude_config_dirs",
    "daily_tokens",
    "import_transcripts",
    "record_command",
    "record_stream",
    "transcript_files",
]
