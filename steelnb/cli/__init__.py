"""The `steelnb` command: one module a command (its flags, its run, the lines it prints), `main` assembling them.

`main.make_parser` imports a command's module only for the command that runs: train's, detect's and the others'
import torch, which `steelnb decide` and `steelnb report` never need.
"""

from .main import main, make_parser

__all__ = ["main", "make_parser"]
