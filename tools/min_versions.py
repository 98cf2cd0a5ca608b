"""The declared minimum versions, tried: a virtualenv where every direct dependency of the faces is resolved
to the lowest version pyproject.toml allows (uv's ``--resolution lowest-direct``), then the faces' tests in
it. Run by `make test`. The virtualenv is kept in build/min-venv and rebuilt when pyproject.toml changes.

    python tools/min_versions.py
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "build" / "min-venv"
EXTRAS = "langchain,llamaindex,mcp,sandbox"
# The test tools are not what is being tried: they come at the versions the project pins.
TEST_TOOLS = ["pytest", "pytest-asyncio", "pytest-timeout", "hypothesis", "langchain-tests", "uv"]
FACE_TESTS = [
    "tests/integrations/test_langchain.py",
    "tests/integrations/test_llama_index.py",
    "tests/integrations/test_mcp.py",
    "tests/integrations/test_deferred_packs.py",
    "tests/test_tokens.py",
]


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.stderr.write(f"$ {' '.join(cmd)}\n{done.stdout[-4000:]}{done.stderr[-4000:]}\n")
        raise SystemExit(f"minimum-versions check failed: {' '.join(cmd[:5])}")
    return done.stdout


def main() -> int:
    key = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes()
        + (ROOT / "sandbox" / "pyproject.toml").read_bytes()
        + (ROOT / "constraints.txt").read_bytes()
    ).hexdigest()
    stamp = VENV / ".requirements"
    py = str(VENV / "bin" / "python")
    if not (stamp.exists() and stamp.read_text() == key):
        run([sys.executable, "-m", "venv", "--clear", str(VENV)])
        run(
            [
                py,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-c",
                str(ROOT / "constraints.txt"),
                *TEST_TOOLS,
            ]
        )
        run(
            [
                str(VENV / "bin" / "uv"),
                "pip",
                "install",
                "--quiet",
                "--python",
                py,
                "--resolution",
                "lowest-direct",
                "-e",
                str(ROOT / "sandbox"),  # the [sandbox] extra's distribution, from this repository
                "-e",
                f"{ROOT}[{EXTRAS}]",
            ]
        )
        stamp.write_text(key)
    versions = run([py, "-m", "pip", "list", "--format=freeze"])
    shown = [
        line
        for line in versions.splitlines()
        if line.split("==")[0].lower()
        in {
            "langchain-core",
            "langchain",
            "langgraph",
            "langgraph-checkpoint-sqlite",
            "llama-index-core",
            "mcp",
            "httpx",
            "orjson",
            "pydantic",
            "platformdirs",
            "tiktoken",
            "snowballstemmer",
        }
    ]
    print("minimum versions:", ", ".join(shown), flush=True)
    out = run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FACE_TESTS])
    print(out.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
