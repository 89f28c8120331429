"""The notebooks run from top to bottom (nbclient, a real kernel), and none is committed with outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAMES = [path.name for path in NOTEBOOKS]


def read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]  # nbformat ships no types


def test_the_notebooks_named_in_the_readme_are_there() -> None:
    assert {"quickstart.ipynb", "lineage-review.ipynb"} <= set(NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_a_committed_notebook_has_no_outputs(path: Path) -> None:
    """Outputs are stripped before commit (they carry run ids, times and images that churn)."""
    notebook = read(path)
    dirty = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count)
    ]
    assert dirty == [], (
        f"{path.name}: cells {dirty} have outputs; clear them (jupyter nbconvert --clear-output --inplace)"
    )


def execute(path: Path, tmp_path: Path) -> Any:
    notebook = read(path)
    client = NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    nbformat.write(notebook, tmp_path / path.name)  # type: ignore[no-untyped-call]  # kept for a look: --basetemp=DIR
    return notebook


def outputs_text(notebook: Any) -> str:
    return "\n".join(
        str(output.get("text", "")) for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )


def every_output(notebook: Any) -> str:
    """Everything the notebook shows: printed text, results, errors."""
    return "\n".join(str(output) for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


SECRET = "whsec-live-7c1d9e3f5a2b4c6d"


def test_the_quickstart_shows_a_stale_and_a_conflicting_document_blocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_SIGNING_KEY", SECRET)  # a real key exported by the reader: never to be shown
    notebook = execute(ROOT / "notebooks" / "quickstart.ipynb", tmp_path)
    assert SECRET not in every_output(notebook)
    text = outputs_text(notebook)
    assert "ALLOWED  crm-ana" in text
    assert "BLOCKED  erp-bruno  STALE" in text
    assert "BLOCKED  erp-carla  CONFLICT" in text
    assert "below the floor of 1" in text


def test_the_lineage_review_finds_the_calls_and_draws_the_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plot = tmp_path / "lineage-review.png"
    monkeypatch.setenv("FRESHGUARD_NOTEBOOK_PLOT", str(plot))
    monkeypatch.setenv("STRIPE_SIGNING_KEY", SECRET)
    notebook = execute(ROOT / "notebooks" / "lineage-review.ipynb", tmp_path)
    assert SECRET not in every_output(notebook)
    text = outputs_text(notebook)
    assert "72 checks and model calls kept" in text
    assert "model calls that saw SAP data" in text
    assert "chatcmpl-" in text
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
    assert plot.stat().st_size > 10_000
