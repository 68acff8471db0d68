"""Makes the modules named in $RVM_BLOCK_IMPORTS (comma-separated) unimportable, as if not installed.

Put this folder on PYTHONPATH of a subprocess (tests/test_missing_extras.py): Python imports
``sitecustomize`` at start-up, and the finder below answers every import of a blocked module
(and its submodules) with ModuleNotFoundError.
"""

import os
import sys

BLOCKED = {name for name in os.environ.get("RVM_BLOCK_IMPORTS", "").split(",") if name}


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
