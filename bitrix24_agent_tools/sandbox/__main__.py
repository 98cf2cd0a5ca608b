"""`python -m bitrix24_agent_tools.sandbox`: serve a sandbox portal on loopback."""

import argparse

from bitrix24_agent_tools.sandbox.cli import add_arguments, run

parser = argparse.ArgumentParser(prog="python -m bitrix24_agent_tools.sandbox")
add_arguments(parser)
raise SystemExit(run(parser.parse_args()))
