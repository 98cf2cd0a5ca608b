"""The sandbox's own README (sandbox/README.md) shows what works: its Python blocks run, in order, in one
namespace, against the package alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "sandbox" / "README.md"


def test_the_sandbox_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    portal = namespace["portal"]
    assert (tmp_path / "portal.json").exists()
    assert portal.entity("deal", 5) is not None  # type: ignore[attr-defined]
    assert namespace["reply"]["total"] == 30  # type: ignore[index]
