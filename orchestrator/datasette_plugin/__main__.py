"""``python -m orchestrator.datasette_plugin ARGS``: ``datasette ARGS`` with this plugin.

What ``orchestrator serve`` runs. Installed, the package registers the plugin through its
entry point and this changes nothing; run from a checkout (``PYTHONPATH``) it registers it
here. Either way it is registered once.
"""

from __future__ import annotations

from datasette.cli import cli
from datasette.plugins import pm

from orchestrator import datasette_plugin

if not pm.is_registered(datasette_plugin):
    pm.register(datasette_plugin, name="orchestrator")

cli(prog_name="datasette")
