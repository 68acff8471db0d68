"""TF.js graph-model runner: drives ``node/tfjs_runner.mjs`` (TF.js WebAssembly backend) as one
persistent subprocess, so the model loads once per artifact.

The recurrent state is the NHWC float32 arrays the model returned (scalar zeros on the first
frame), sent back with the next frame; the Node side keeps nothing between requests.
Set ``RVM_TFJS_BACKEND=cpu`` to use the pure-JavaScript backend instead (much slower).

The script, package.json and package-lock.json are installed with the package (also by a plain,
non-editable ``pip install``); the npm packages they lock are not (~30 MB, platform-independent JS and
WebAssembly): ``npm ci --omit=dev`` in :data:`NODE_DIR` installs them once (``make setup`` does it in a
checkout). Node.js resolves them from beside the script, so they have to live in that folder.
"""

import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np

from rvm_export.contract import METADATA_KEY, OUTPUT_NAMES, STATE_INPUTS, ArtifactMetadata
from rvm_export.contract.errors import first_line

from .base import LARGE_TENSOR, ArtifactFacts, Outputs, Runner, RunnerError, load_error, precision_of

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "tfjs_runner.mjs"


def model_dir(path: Path) -> Path:
    return path.parent if path.name == "model.json" else path


def read_model_json(path: Path) -> dict:
    model_json = model_dir(path) / "model.json"
    try:
        content = json.loads(model_json.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
        raise load_error(model_json, "a readable TF.js model.json", exc)
    if not isinstance(content, dict):
        raise RunnerError(f"{model_json} is not a TF.js model.json (not a JSON object)")
    return content


def encode_request(src: np.ndarray, state: Any, downsample_ratio: float) -> bytes:
    """One frame for a TF.js runner page or process: a JSON header line (ratio, input names and NHWC shapes),
    then the inputs as raw little-endian float32."""
    inputs = [("src", src.transpose(0, 2, 3, 1)), *zip(STATE_INPUTS, state, strict=True)]
    header = {"ratio": float(downsample_ratio), "inputs": [{"name": n, "shape": list(a.shape)} for n, a in inputs]}
    payload = b"".join(np.ascontiguousarray(a, "<f4").tobytes() for _, a in inputs)
    return json.dumps(header).encode() + b"\n" + payload


def weights_manifest_facts(path: Path) -> ArtifactFacts:
    """Precision from the weights manifest: a quantized weight counts as its stored integer type."""
    dtypes = []
    try:
        for group in read_model_json(path).get("weightsManifest", []):
            for weight in group.get("weights", []):
                if _element_count(weight.get("shape", [])) >= LARGE_TENSOR:
                    dtypes.append(str(weight.get("quantization", {}).get("dtype", weight.get("dtype", "float32"))))
    except (AttributeError, TypeError, ValueError) as exc:  # a list where an object belongs, a shape of strings...
        raise RunnerError(f"{model_dir(path) / 'model.json'} has a malformed weightsManifest: {first_line(exc)}")
    return precision_of(dtypes, "weightsManifest")


def _element_count(shape: Any) -> int:
    """The number of elements of a weight's ``shape`` (a list of non-negative integers), in Python integers
    (no int64 overflow from a forged size)."""
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ValueError(f"weight shape {str(shape)[:60]} is not a list of sizes")
    count = 1
    for dim in shape:
        count *= dim
    return count


class TfjsRunner(Runner):
    kind = "tfjs"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        node = shutil.which("node")
        if node is None:
            raise RunnerError("the tfjs runner needs Node.js (node) on PATH")
        if not (NODE_DIR / "node_modules" / "@tensorflow" / "tfjs-core").is_dir():
            raise RunnerError(
                f"the tfjs runner's npm packages are not installed; run once: cd {NODE_DIR} && npm ci --omit=dev"
            )
        backend = os.environ.get("RVM_TFJS_BACKEND", "wasm")
        # Node.js's own stderr (a crash's stack, a fatal V8 error) goes to a file, and the line that says
        # why ends the RunnerError: the command's one line, not pages of JavaScript.
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            # absolute: Node runs in NODE_DIR, where a path relative to the caller's folder means nothing
            [node, str(SCRIPT), str(model_dir(self.path).resolve()), backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=NODE_DIR,
        )
        atexit.register(self.close)
        try:
            ready = self._read_header()
        except RunnerError:
            self.close()
            raise
        if "error" in ready:
            self.close()
            raise RunnerError(f"TF.js could not load {self.path}: {first_line(str(ready['error']), 400)}")
        self.backend = ready.get("backend", backend)
        self.tfjs_version = ready.get("tfjs", "?")

    @classmethod
    def sandbox_needs(cls, policy: Any, path: Path, device: Optional[str], backend: Optional[str]) -> None:
        """Node.js is the one program the child starts (it inherits the child's confinement); it reads OpenSSL's
        configuration when it starts (not /etc/ssl's private keys)."""
        node = shutil.which("node")
        if node is not None:
            policy.execute.append(os.path.realpath(node))
        policy.read += ["/etc/ssl/openssl.cnf", os.path.realpath("/etc/ssl/openssl.cnf")]

    @classmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        user = read_model_json(Path(path)).get("userDefinedMetadata", {})
        meta = user.get(METADATA_KEY) if isinstance(user, dict) else None
        if not meta:
            return None
        try:
            return ArtifactMetadata.from_json(json.dumps(meta))
        except (ValueError, TypeError, RecursionError) as exc:  # not an object, fields missing
            raise load_error(model_dir(path) / "model.json", f"a model.json with a readable {METADATA_KEY}", exc)

    def facts(self) -> ArtifactFacts:
        return weights_manifest_facts(self.path)

    def describe(self) -> str:
        return f"TF.js {self.tfjs_version} in Node.js, backend {self.backend}"

    def initial_state(self, batch: int) -> List[np.ndarray]:
        return [np.zeros((), np.float32)] * 4

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        try:
            self.process.stdin.write(encode_request(src, state, downsample_ratio))
            self.process.stdin.flush()
        except BrokenPipeError:
            raise RunnerError(f"the TF.js runner process has exited ({self._exit_status()}){self._node_said()}")
        reply = self._read_header()
        if "error" in reply:
            raise RuntimeError(f"TF.js: {reply['error']}")  # a backend failure: the harness reports it
        nhwc = {}
        for spec in reply["outputs"]:
            count = int(np.prod(spec["shape"]))
            nhwc[spec["name"]] = np.frombuffer(self._read(4 * count), "<f4").reshape(spec["shape"])
        outputs = {n: nhwc[n].transpose(0, 3, 1, 2).astype(np.float32) for n in OUTPUT_NAMES if n in nhwc}
        return outputs, [nhwc[n] for n in ("r1o", "r2o", "r3o", "r4o")]

    def _read(self, size: int) -> bytes:
        data = self.process.stdout.read(size)
        if data is None or len(data) < size:
            raise RunnerError(f"the TF.js runner process exited mid-reply ({self._exit_status()}){self._node_said()}")
        return data

    def _read_header(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RunnerError(f"the TF.js runner exited ({self._exit_status()}) without answering{self._node_said()}")
        try:
            header = json.loads(line)
        except (ValueError, RecursionError):
            header = None
        if not isinstance(header, dict):
            raise RunnerError(f"the TF.js runner answered {line[:80]!r}, not a JSON header line{self._node_said()}")
        return header

    def _exit_status(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"code {code}"

    def _node_said(self) -> str:
        """': Node.js said: <the line of its stderr that says why>', or nothing."""
        try:
            self._stderr.seek(0)
            text = self._stderr.read()[-65536:].decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            return ""
        telling = [line for line in lines if "Error" in line or "FATAL" in line or "error" in line]
        return f"; Node.js said: {(telling or lines)[-1][:300]}"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()
