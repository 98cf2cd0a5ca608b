"""Every example and notebook runs offline, start to finish."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs(name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "B24_WEBHOOK_URL": ""}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    assert done.stdout.strip()


def test_notebooks_execute() -> None:
    import nbformat
    from nbclient import NotebookClient

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(
            notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], path.name
        assert outputs


def test_notebooks_are_committed_with_their_outputs_as_data_people_look_at() -> None:
    """Tables are DataFrames, charts are images, and the outputs are in the committed files (a reader on
    GitHub sees them without running anything)."""
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        with_output = [cell for cell in code if cell.get("outputs")]
        assert len(with_output) >= len(code) - 1, path.name  # every cell but the imports shows something
        kinds = {k for cell in with_output for o in cell.outputs for k in (o.get("data") or {})}
        assert "text/html" in kinds, path.name  # a DataFrame
        assert "<svg" not in path.read_text() and "def table(" not in path.read_text()


def test_results_become_dataframes() -> None:
    from bitrix24_agent_tools import Bitrix24, Guard, Policy, Toolbox
    from bitrix24_agent_tools.confirmers import AutoConfirmer
    from bitrix24_agent_tools.frames import records, to_dataframe
    from bitrix24_agent_tools.sandbox import Portal

    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    rows = client.export("crm.deal.list", {"select": ["ID", "TITLE"]})
    assert list(to_dataframe(rows).columns) == ["ID", "TITLE"] and len(to_dataframe(rows)) == len(rows)
    box = Toolbox(client, guard=Guard(Policy.writer(), AutoConfirmer()))
    listed = box.run("b24_crm_list", {"entity": "deal", "limit": 3})
    frame = to_dataframe(listed)  # every field of the full data, not the model's compact text
    assert len(frame) == 3 and {"ID", "TITLE", "STAGE_ID"} <= set(frame.columns)
    box.run("b24_deal_move", {"id": 2, "stage_id": "WON"})
    audit = to_dataframe(box.guard.audit.rows(), ["method", "decision", "status"])
    assert audit.iloc[-1].tolist() == ["crm.deal.update", "approved", "ok"]
    assert records({"columns": ["a", "b"], "rows": [[1, 2]]}) == [{"a": 1, "b": 2}]
