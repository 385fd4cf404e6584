"""`python -m steelnb.cli ...` (and torchrun's `-m steelnb.cli`): the `steelnb` command."""

import sys

from .main import main

sys.exit(main())
