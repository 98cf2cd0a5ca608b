"""What an import costs (issue #34: client CPU per export, imports included): a script that only talks to the
portal loads the client, not the guard, packs, router or settings; the package's names still resolve."""

from __future__ import annotations

import json
import subprocess
import sys


def test_importing_the_client_loads_neither_the_agent_side_nor_pydantic_settings() -> None:
    script = (
        "import json, sys\n"
        "import bitrix24_agent_tools.client\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('bitrix24_agent_tools', "
        "'pydantic_settings', 'snowballstemmer')))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout))
    heavy = {"bitrix24_agent_tools.guard", "bitrix24_agent_tools.router", "bitrix24_agent_tools.packs"}
    assert not loaded & heavy and "pydantic_settings" not in loaded, sorted(loaded)


def test_the_package_names_resolve_on_first_use() -> None:
    import bitrix24_agent_tools as package
    from bitrix24_agent_tools.guard import Guard
    from bitrix24_agent_tools.toolbox import Toolbox

    assert package.Toolbox is Toolbox and package.Guard is Guard
    assert set(package.__all__) <= set(dir(package))
    try:
        package.NotAThing  # noqa: B018
    except AttributeError as error:
        assert "NotAThing" in str(error)
    else:
        raise AssertionError("an unknown name resolved")
