import sys

from hpml.cli import main

sys.exit(main())
