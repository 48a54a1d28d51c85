"""``python -m hpml.gate`` -- the same as ``hpml gate``."""

import sys

from hpml.gate.command import main

sys.exit(main())
