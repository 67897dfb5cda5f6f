"""Running the project's Jupyter notebooks, in Jupyter and as static offline HTML.

Two halves. Inside a notebook, :func:`setup_plotly` makes every plotly figure carry
plotly.js itself (no CDN, no MathJax from the web), so a notebook saved with outputs,
or exported to HTML, shows its charts offline; :func:`say` prints a plain message
(an empty database, a missing session). Outside, :func:`execute_notebook` runs a
notebook top to bottom against a chosen database (``ORCHESTRATOR_DB`` in the kernel's
environment), optionally with parameters injected after the cell tagged
``parameters``, and :func:`render_notebook` writes it as one self-contained HTML file
for people without Jupyter: the exported page loads no script from the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"

#: The plotly renderer the notebooks use: the plotly mimetype for JupyterLab (whose
#: plotly extension draws it offline) plus HTML with plotly.js inlined for everything else.
RENDERER = "plotly_mimetype+orchestrator_offline"

# nbconvert's "lab" page without what it loads from CDNs: require.js, MathJax, Mermaid
# and the widgets manager. Plotly needs none of them (plotly.js is inlined).
_OFFLINE_TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


def setup_plotly() -> None:
    """Make plotly figures display offline: register and select :data:`RENDERER`.

    The first figure shown also emits plotly.js (about 4.6 MB) once, inline.
    """
    import plotly.io as pio
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineRenderer(NotebookRenderer):
        """plotly's offline "notebook" renderer, minus the MathJax it loads from a CDN."""

        def to_mimebundle(self, fig_dict: Any) -> dict[str, str]:
            html = pio.to_html(
                fig_dict,
                config=self.config,
                include_plotlyjs=False,  # activate() has emitted plotly.js once
                include_mathjax=False,
                full_html=False,
                default_width="100%",
                default_height=525,
                validate=False,
            )
            return {"text/html": html}

    pio.renderers["orchestrator_offline"] = OfflineRenderer()
    pio.renderers.default = RENDERER
    pio.templates.default = "plotly_white"


def database_path() -> Path | str:
    """The database a notebook reads: ``$ORCHESTRATOR_DB`` (or ``$DATABASE_PATH``) when
    set, a file or a ``postgresql://`` URL; else ``orchestrator.db`` in the working folder
    if there is one, else the project's (beside ``notebooks/``: Jupyter runs a notebook
    in its own folder)."""
    from ..store.targets import default_target

    target = default_target()
    if os.environ.get("ORCHESTRATOR_DB") or os.environ.get("DATABASE_PATH"):
        return target
    # The default file's name (orchestrator.db), here or beside notebooks/.
    return target if Path(target).exists() else NOTEBOOKS_DIR.parent / target


def shown(db_path: str | os.PathLike[str]) -> str:
    """A database for the page: a path, or a URL without its password."""
    from ..store.targets import backend_for

    return backend_for(db_path).location


def has_data(db_path: str | os.PathLike[str]) -> bool:
    """Whether ``db_path`` (a file or a ``postgresql://`` URL) holds runs to analyse; if
    not, :func:`say` why, plainly."""
    from ..store.targets import backend_for
    from .analysis import has_history

    store = backend_for(db_path)
    label = store.location
    if store.missing():
        say(
            f"**No database at `{label}`.** Set `ORCHESTRATOR_DB` to your database, or "
            "create a demo one with `orchestrator demo orchestrator.db`, then run again."
        )
        return False
    try:
        found = has_history(db_path)
    except ConnectionError as exc:  # a server's store
        say(f"**Cannot read `{label}`:** {exc}. Check `ORCHESTRATOR_DB`, then run again.")
        return False
    if not found:
        say(
            f"**No data yet: the database `{label}` is empty** (no runs recorded), so there "
            "is nothing to chart. Record runs with the writer library (or fill a demo "
            "database with `orchestrator demo`), then run this notebook again."
        )
        return False
    return True


def say(text: str) -> None:
    """Show ``text`` (markdown) as the cell's output: rendered in Jupyter and in HTML,
    the same text as ``text/plain`` for everything else (a terminal, a test)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with the notebooks extra
        print(text)
        return
    if get_ipython() is None:  # a plain Python session: no display to show markdown
        print(text)
        return
    display({"text/markdown": text, "text/plain": text}, raw=True)


def _inject_parameters(nb: Any, parameters: dict[str, Any]) -> None:
    """Add a cell assigning ``parameters`` right after the cell tagged ``parameters``."""
    import nbformat

    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    cells = nb.cells
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    if not tagged:
        raise ValueError("the notebook has no cell tagged 'parameters' to override")
    cells.insert(tagged[0] + 1, cell)


def execute_notebook(
    path: str | os.PathLike[str],
    db_path: str | os.PathLike[str] | None = None,
    *,
    parameters: dict[str, Any] | None = None,
    timeout: int = 600,
    kernel_name: str = "python3",
) -> Any:
    """Run the notebook at ``path`` top to bottom and return it with its outputs.

    The kernel runs in the notebook's folder with ``ORCHESTRATOR_DB`` set to
    ``db_path``, a file or a ``postgresql://`` URL (default: this process's
    :func:`orchestrator.store.targets.default_target`).
    Raises ``nbclient.exceptions.CellExecutionError`` when a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    from ..store.targets import default_target, resolved

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if parameters:
        _inject_parameters(nb, parameters)
    database = db_path if db_path is not None else default_target()
    env = {**os.environ, "ORCHESTRATOR_DB": resolved(database)}
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": os.fspath(path.resolve().parent)}},
    )
    client.execute(env=env)
    return nb


def export_html(nb: Any) -> str:
    """A notebook (with outputs) as one HTML page that loads nothing from the network."""
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"orchestrator_offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="orchestrator_offline.html.j2",
    )
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb)
    return str(body)


def render_notebook(
    path: str | os.PathLike[str],
    db_path: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    *,
    parameters: dict[str, Any] | None = None,
    timeout: int = 600,
) -> Path:
    """Execute the notebook at ``path`` against ``db_path`` (a file or a ``postgresql://``
    URL) and write it as static,
    offline HTML to ``output`` (default: beside the notebook, ``.html``). Returns
    the path written."""
    path = Path(path)
    nb = execute_notebook(path, db_path, parameters=parameters, timeout=timeout)
    target = Path(output) if output is not None else path.with_suffix(".html")
    target.write_text(export_html(nb), encoding="utf-8")
    return target


__all__ = [
    "NOTEBOOKS_DIR",
    "RENDERER",
    "database_path",
    "execute_notebook",
    "export_html",
    "has_data",
    "render_notebook",
    "say",
    "setup_plotly",
    "shown",
]
