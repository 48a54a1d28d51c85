"""``python -m hpml.report`` -- the same as ``hpml report``."""

import sys

from hpml.report.command import main

sys.exit(main())
