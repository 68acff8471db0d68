"""``python -m tests.fuzz``: the fuzz driver's command line (tests/fuzz/driver.py), run from the repository root."""

import sys

from tests.fuzz.driver import main

sys.exit(main())
