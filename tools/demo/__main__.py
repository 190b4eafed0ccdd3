"""``python -m tools.demo``: the demo network (tools/demo/__init__.py)."""

import sys

from tools.demo.run import cli

sys.exit(cli())
