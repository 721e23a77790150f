"""`python -m arscale ...`: the `arscale` command, for an environment whose scripts folder is not on PATH."""

import sys

from arscale.cli import main

sys.exit(main())
