"""The installed package's own version, for the CLI, the MCP server's info and the tracer."""

from __future__ import annotations


def package_version(fallback: str = "0+unknown") -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bitrix24-agent-tools")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return fallback
