"""Runners for tests/runtimes/test_child.py, opened in the confined child (rvm_export/runtimes/child.py) by entry
name: each does what its mode says, as a runtime reading a hostile file would, and the kernel answers."""

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np

from rvm_export.contract.errors import RunnerError
from rvm_export.runtimes.base import Outputs, Runner


class ActingRunner(Runner):
    """``RVM_TEST_MODE`` names what to do while opening (or on frame 2); ``RVM_TEST_TARGET`` what to do it to."""

    kind = "test"

    def __init__(self, path: Path) -> None:
        self.path, self.metadata, self.mode = Path(path), None, os.environ["RVM_TEST_MODE"]
        target = os.environ.get("RVM_TEST_TARGET", "")
        if self.mode == "abort at load":
            os.abort()
        if self.mode == "refuse at load":
            raise RunnerError("the test model refuses to load")
        if self.mode == "read":
            Path(target).read_bytes()
        if self.mode == "write":
            Path(target).write_text("written by the child")
        if self.mode == "exec":
            subprocess.run([target, "-c", "true"], check=True)
        if self.mode == "connect":
            socket.create_connection(("127.0.0.1", int(target)), timeout=5).close()
        if self.mode == "abstract":
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect("\0" + target)
        if self.mode == "signal":
            os.kill(int(target), 0)
        if self.mode == "environ":
            Path(f"/proc/{target}/environ").read_bytes()
        if self.mode == "hang":
            import time

            time.sleep(3600)
        if self.mode == "memory":
            np.ones(int(target) << 20, np.uint8)

    @classmethod
    def read_metadata(cls, path: Path) -> None:
        return None

    def describe(self) -> str:
        return f"torch imported: {'torch' in sys.modules}"

    def initial_state(self, batch: int) -> Any:
        return [np.full((batch, 1), 7.0, np.float32)]

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        if self.mode == "abort on frame 2" and float(src.flat[0]) == 2:
            sys.stderr.write("free(): invalid pointer\n")
            sys.stderr.flush()
            os.abort()
        if self.mode == "raise on frame 2" and float(src.flat[0]) == 2:
            raise ValueError("a broken artifact's own error")
        return {"fgr": src * 2, "pha": src[:, :1].astype(np.float16), "r1o": state[0] + 1}, [state[0] + 1]


class NativeImports(ActingRunner):
    """Imports the ncnn and MNN runners (as their children do) and says whether PyTorch came with them."""

    def __init__(self, path: Path) -> None:
        import rvm_export.runtimes.mnn  # noqa: F401
        import rvm_export.runtimes.ncnn  # noqa: F401

        self.path, self.metadata, self.mode = Path(path), None, ""

    def fixed_ratio(self) -> Optional[float]:
        return 0.5
