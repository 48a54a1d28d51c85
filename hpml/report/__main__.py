"""``python -m hpml.report`` -- the same as ``hpml report`` (one parser, one error handler)."""

import sys

from hpml.cli import main

sys.exit(main(["report", *sys.argv[1:]]))
