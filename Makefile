# Every target bootstraps its own virtualenv from the package registries on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TIKTOKEN_CACHE_DIR := $(CURDIR)/bitrix24_agent_tools/_static/tiktoken

.PHONY: demo test lint bench clean venv wheel-check min-versions

# The sandbox portal is a distribution of its own (sandbox/): installed from here beside the toolkit.
$(STAMP): pyproject.toml sandbox/pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ./sandbox -e ".[all,dev]"
	touch $(STAMP)

# langchain-mcp-adapters cannot import under the mcp 2.x SDK our server uses: its interop test runs from a
# second virtualenv (mcp 1.x) that talks to our server over stdio.
ADAPTERS_STAMP := .venv-mcp-adapters/.installed
$(ADAPTERS_STAMP): tools/mcp_adapters_env.txt
	test -x .venv-mcp-adapters/bin/python || $(PYTHON) -m venv .venv-mcp-adapters
	.venv-mcp-adapters/bin/python -m pip install --quiet --disable-pip-version-check -r tools/mcp_adapters_env.txt
	touch $(ADAPTERS_STAMP)

venv: $(STAMP)

# The demo needs only the LangChain extra and the sandbox: a fresh machine installs that, not every extra and dev tool.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml sandbox/pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ./sandbox -e ".[langchain,sandbox]"
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/b24-agent-tools demo

# The wheel, installed alone per extra (bare, [langchain], [langgraph], [llamaindex], [mcp]) with a smoke test of
# each face and of the CLI; and the faces' tests at the declared minimum versions. Virtualenvs live in build/.
wheel-check: $(STAMP)
	$(PY) tools/wheel_check.py

min-versions: $(STAMP)
	$(PY) tools/min_versions.py

test: $(STAMP) $(ADAPTERS_STAMP)
	$(PY) tools/wheel_check.py
	$(PY) tools/min_versions.py
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .venv-mcp-adapters build .pytest_cache .mypy_cache .ruff_cache
