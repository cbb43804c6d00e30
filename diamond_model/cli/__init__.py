"""The command line: `python -m diamond_model COMMAND` (or `diamond-model`)."""

from diamond_model.cli.commands import main

__all__ = ["main"]
