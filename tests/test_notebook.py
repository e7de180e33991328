"""The quickstart notebook runs as Jupyter runs it: its code cells in order, in one namespace, while an event loop is
running in the thread that runs them. That is where a blocking API that drove an event loop of its own in the
caller's thread would fail ("This event loop is already running"); `Wegent` runs its loop in a thread of its own.

The outputs saved in the notebook are what its cells print: `python tests/test_notebook.py` runs the cells and
writes their outputs back (after a change to the notebook or to the events the engine writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

from wegent_core import TaskState

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook" / "quickstart.ipynb"


def load() -> dict[str, Any]:
    return json.loads(NOTEBOOK.read_text())


def code_cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def run_cells(notebook: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Run the code cells inside a running event loop, as a Jupyter kernel does; the namespace they share, and
    what each cell printed."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    printed: list[str] = []

    async def kernel() -> None:
        asyncio.get_running_loop()  # the cells run while this loop runs, and block it, as in Jupyter
        for index, cell in enumerate(code_cells(notebook)):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile("".join(cell["source"]), f"<cell {index + 1}>", "exec"), namespace)
            printed.append(out.getvalue())

    cwd = Path.cwd()
    os.chdir(NOTEBOOK.parent)  # Jupyter starts a notebook's kernel in the notebook's folder
    try:
        asyncio.run(kernel())
    finally:
        os.chdir(cwd)
    return namespace, printed


def saved_output(cell: dict[str, Any]) -> str:
    return "".join("".join(output["text"]) for output in cell["outputs"] if output.get("name") == "stdout")


def test_the_notebook_is_a_valid_nbformat_4_document() -> None:
    notebook = load()
    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    assert notebook["metadata"]["kernelspec"]["language"] == "python"
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(ids) == len(set(ids))
    for cell in notebook["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        assert isinstance(cell["metadata"], dict)
        assert isinstance(cell["source"], list)
        assert all(isinstance(line, str) for line in cell["source"])
    for number, cell in enumerate(code_cells(notebook), start=1):
        assert cell["execution_count"] == number  # run top to bottom, once
        for output in cell["outputs"]:
            assert output == {"name": "stdout", "output_type": "stream", "text": output["text"]}


def test_the_cells_run_inside_a_running_event_loop_and_print_what_the_notebook_shows() -> None:
    notebook = load()
    namespace, printed = run_cells(notebook)

    assert namespace["waiting"].status is TaskState.PENDING_CONFIRMATION
    assert namespace["waiting"].current_stage == 0
    assert namespace["final"].status is TaskState.COMPLETED
    assert namespace["result"] == "APPROVE: the limit matches the spec; add a test for the Retry-After header."

    for cell, output in zip(code_cells(notebook), printed, strict=True):
        assert output == saved_output(cell), f"the notebook's saved output is stale: python {__file__}"


def write_outputs() -> None:
    """Run the cells and save what they print as their outputs."""
    notebook = load()
    _, printed = run_cells(notebook)
    for number, (cell, output) in enumerate(zip(code_cells(notebook), printed, strict=True), start=1):
        cell["execution_count"] = number
        lines = output.splitlines(keepends=True)
        cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": lines}] if lines else []
    NOTEBOOK.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_outputs()
