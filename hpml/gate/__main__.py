"""``python -m hpml.gate`` -- the same as ``hpml gate`` (one parser, one error handler)."""

import sys

from hpml.cli import main

sys.exit(main(["gate", *sys.argv[1:]]))
