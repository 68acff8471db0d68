"""TF.js graph-model runner in headless Chromium: the WebGL (float32 or float16 textures),
WebAssembly and CPU backends, where the RVM web demo actually runs.

Pieces: a local HTTP server on 127.0.0.1 (ephemeral port) serves the page
(``browser/runner.html``), the pinned TF.js bundle from ``node/node_modules`` and the model
folder; Playwright drives Debian's Chromium (``/usr/bin/chromium`` or ``$RVM_CHROMIUM``; nothing is
downloaded). Frames go over that server as binary (the Node runner's JSON-line + raw float32
format), so only a token crosses the DevTools connection per frame. One Chromium is shared by
every runner of the process (a new browser context per artifact).
"""

import atexit
import json
import os
import shutil
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

import numpy as np

from rvm_export.contract import OUTPUT_NAMES, ArtifactMetadata
from rvm_export.contract.errors import first_line

from .base import ArtifactFacts, Outputs, Runner, RunnerError
from .tfjs import NODE_DIR, TfjsRunner, encode_request, model_dir, weights_manifest_facts

BROWSER_BACKENDS = ("webgl", "webgl-f16", "wasm", "cpu")
PAGE_DIR = Path(__file__).resolve().parent / "browser"
TFJS_DIST = NODE_DIR / "node_modules" / "@tensorflow" / "tfjs" / "dist"
WASM_DIST = NODE_DIR / "node_modules" / "@tensorflow" / "tfjs-backend-wasm" / "dist"
TFJS_MOUNTS = {"/tfjs/": TFJS_DIST, "/tfjs-wasm/": WASM_DIST}  # where the pages load TF.js from
# Root needs --no-sandbox; the background-service flags keep Chromium off the (closed) network.
# SwiftShader is Chromium's software GPU: it gives WebGL without a GPU or display (it is
# "unsafe" only for untrusted pages; these are our own, on 127.0.0.1).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
]
TIMEOUT_MS = 600_000  # one frame at 512x288 on the pure-JS CPU backend takes minutes


def chromium_args() -> List[str]:
    """The flags Chromium starts with: ours, then $RVM_CHROMIUM_ARGS (extra flags, split on spaces)."""
    return [*CHROMIUM_ARGS, *os.environ.get("RVM_CHROMIUM_ARGS", "").split()]


DEBIAN_CHROMIUM = Path("/usr/lib/chromium/chromium")  # what Debian's /usr/bin/chromium shell script starts


def chromium_path() -> Path:
    """$RVM_CHROMIUM, else Debian's Chromium binary (not its wrapper script, which runs a shell, grep, find and
    readlink: programs the confined child may not start), else ``chromium`` on PATH."""
    configured = os.environ.get("RVM_CHROMIUM")
    debian = DEBIAN_CHROMIUM if DEBIAN_CHROMIUM.is_file() else None
    found = configured or debian or shutil.which("chromium")
    if not found or not Path(found).is_file():
        raise RunnerError(
            f"the browser TF.js runner needs Chromium ({configured or '/usr/bin/chromium'} not found); "
            "run tools/install_chromium.sh (apt-get install chromium) or set RVM_CHROMIUM"
        )
    return Path(found)


class _Handler(SimpleHTTPRequestHandler):
    """Static files from a few mounted folders, plus the per-runner frame exchange."""

    server: "LocalServer"
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".bin": "application/octet-stream",
    }

    def translate_path(self, path: str) -> str:
        route = unquote(urlsplit(path).path)
        for prefix, folder in sorted(self.server.mounts.items(), key=lambda kv: -len(kv[0])):
            if route.startswith(prefix):
                relative = Path(route[len(prefix) :].lstrip("/"))
                if ".." in relative.parts:
                    break
                return str(folder / relative)
        return str(Path("/nonexistent"))

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        token = self._io_token("in")
        if token is None:
            return super().do_GET()
        body = self.server.exchange.get(token, {}).get("in")
        if body is None:
            return self.send_error(HTTPStatus.NOT_FOUND)
        self._reply(body)

    def do_POST(self) -> None:  # noqa: N802
        token = self._io_token("out")
        if token is None or token not in self.server.exchange:
            return self.send_error(HTTPStatus.NOT_FOUND)
        self.server.exchange[token]["out"] = self.rfile.read(int(self.headers["Content-Length"]))
        self._reply(b"")

    def _io_token(self, direction: str) -> Optional[str]:
        parts = urlsplit(self.path).path.strip("/").split("/")
        return parts[1] if len(parts) == 3 and parts[0] == "io" and parts[2] == direction else None

    def _reply(self, body: bytes) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None


class LocalServer(ThreadingHTTPServer):
    """HTTP on 127.0.0.1, ephemeral port, in a daemon thread. ``mounts`` maps URL prefixes to
    folders; ``exchange[token]`` holds one runner's current request ("in") and reply ("out")."""

    daemon_threads = True

    def __init__(self, mounts: Dict[str, Path], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.mounts = dict(mounts)
        self.exchange: Dict[str, Dict[str, bytes]] = {}
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class BrowserSession:
    """One headless Chromium (via Playwright) and one local server, shared by the runners open at the
    same time (and the demo test); started by the first :meth:`acquire`, closed by the last
    :meth:`release`. Playwright's own driver stays for the process (its sync API allows one per thread)."""

    _shared: Optional["BrowserSession"] = None
    _users = 0
    _playwright: Any = None  # Playwright's sync API allows one instance per thread: kept for the process

    def __init__(self) -> None:
        executable = chromium_path()
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise RunnerError("the browser TF.js runner needs Playwright; install the project's 'tfjs' extra")
        if not (TFJS_DIST / "tf.min.js").is_file():
            raise RunnerError(f"the TF.js bundle is not installed; run `npm ci` in {NODE_DIR}")
        if BrowserSession._playwright is None:
            BrowserSession._playwright = sync_playwright().start()
            atexit.register(BrowserSession._playwright.stop)
        try:
            self.browser = BrowserSession._playwright.chromium.launch(
                executable_path=str(executable), headless=True, args=chromium_args()
            )
        except Exception as exc:
            raise RunnerError(f"Chromium ({executable}) did not start: {first_line(exc)}")
        self.server = LocalServer({**TFJS_MOUNTS, "/runner/": PAGE_DIR})
        atexit.register(self.close)  # a safety net for a caller that never releases

    @classmethod
    def acquire(cls) -> "BrowserSession":
        if cls._shared is None or not cls._shared.browser.is_connected():
            cls._shared, cls._users = cls(), 0
        cls._users += 1
        return cls._shared

    @classmethod
    def release(cls) -> None:
        cls._users = max(cls._users - 1, 0)
        if cls._users == 0 and cls._shared is not None:
            cls._shared.close()

    def mount(self, prefix: str, folder: Path) -> str:
        self.server.mounts[prefix] = folder
        return self.server.origin + prefix

    def close(self) -> None:
        if self.browser.is_connected():
            self.browser.close()
            self.server.close()
        if BrowserSession._shared is self:
            BrowserSession._shared = None


class BrowserTfjsRunner(Runner):
    """Runs a TF.js artifact in headless Chromium on ``backend`` (webgl, webgl-f16, wasm, cpu)."""

    kind = "tfjs"

    def __init__(self, path: str | Path, backend: str = "webgl") -> None:
        super().__init__(path)
        if backend not in BROWSER_BACKENDS:
            raise RunnerError(f"unknown TF.js browser backend {backend!r}; choose one of {', '.join(BROWSER_BACKENDS)}")
        self.backend = backend
        self.session = BrowserSession.acquire()
        self.closed = False
        self.token = f"r{id(self):x}"
        self.session.server.exchange[self.token] = {}
        model_url = self.session.mount(f"/model/{self.token}/", model_dir(self.path)) + "model.json"
        self.context = self.session.browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.goto(self.session.server.origin + "/runner/runner.html")
        try:
            self.info: Dict[str, Any] = self.page.evaluate("([u, b]) => rvm.load(u, b)", [model_url, backend])
        except Exception as exc:
            self.close()
            raise RunnerError(f"TF.js in Chromium could not load {self.path} on {backend}: {first_line(exc)}")
        self.frame_ms: List[float] = []

    @classmethod
    def on_device(cls, path: Path, device: Optional[str], backend: str = "webgl") -> "BrowserTfjsRunner":
        if device not in (None, "cpu"):
            raise RunnerError(f"the browser TF.js runner picks its device by its TF.js backend, not {device}", "device")
        return cls(path, backend)

    @classmethod
    def sandbox_needs(cls, policy: Any, path: Path, device: Optional[str], backend: Optional[str]) -> None:
        """Playwright's Node.js driver and Chromium's folder (it starts its own helpers), fontconfig's settings,
        and TCP: the page's server and Chromium talk over the loopback of the child's own network namespace."""
        import playwright

        policy.execute += [str(Path(playwright.__file__).parent / "driver"), str(chromium_path().resolve().parent)]
        policy.read += [
            "/etc/fonts",
            "/etc/mime.types",
            "/etc/ssl/openssl.cnf",
            os.path.realpath("/etc/ssl/openssl.cnf"),
        ]
        policy.network = True

    @classmethod
    def read_metadata(cls, path: Path) -> Optional[ArtifactMetadata]:
        return TfjsRunner.read_metadata(path)

    def facts(self) -> ArtifactFacts:
        return weights_manifest_facts(self.path)

    def initial_state(self, batch: int) -> List[np.ndarray]:
        return [np.zeros((), np.float32)] * 4

    def infer(self, src: np.ndarray, state: Any, downsample_ratio: float) -> Tuple[Outputs, Any]:
        exchange = self.session.server.exchange[self.token]
        exchange.clear()
        exchange["in"] = encode_request(src, state, downsample_ratio)
        try:
            self.frame_ms.append(float(self.page.evaluate("t => rvm.step(t)", self.token)))  # benchmarks read these
        except Exception as exc:  # the backend's own failure on a broken artifact: the harness reports it
            raise RuntimeError(f"TF.js in Chromium ({self.backend}): {first_line(exc)}")
        reply = exchange.pop("out")
        newline = reply.index(b"\n")
        spec = json.loads(reply[:newline])
        offset, nhwc = newline + 1, {}
        for out in spec["outputs"]:
            count = int(np.prod(out["shape"]))
            nhwc[out["name"]] = np.frombuffer(reply, "<f4", count, offset).reshape(out["shape"])
            offset += 4 * count
        outputs = {n: nhwc[n].transpose(0, 3, 1, 2).astype(np.float32) for n in OUTPUT_NAMES if n in nhwc}
        return outputs, [nhwc[n] for n in ("r1o", "r2o", "r3o", "r4o")]

    def judged_precision(self) -> str:
        """On float16 textures the arithmetic is fp16 whatever the weights are stored in: an fp32 or uint16
        artifact is judged against PyTorch's fp16 noise (uint8 weights stay judged as uint8, the coarser)."""
        precision = self.metadata.precision
        return "fp16" if self.info.get("f16Textures") and precision in ("fp32", "uint16") else precision

    def describe(self) -> str:
        info = self.info
        text = f"TF.js {info.get('tfjs')} in {_browser_name(info.get('userAgent', ''))}, backend {self.backend}"
        if "renderer" in info:
            textures = "float16" if info.get("f16Textures") else "float32"
            text += f" (WebGL {info.get('webglVersion')}, {textures} textures, renderer {info['renderer']})"
        return text

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.context.close()
        except Exception:
            pass
        self.session.server.exchange.pop(self.token, None)
        self.session.server.mounts.pop(f"/model/{self.token}/", None)
        BrowserSession.release()


def _browser_name(user_agent: str) -> str:
    for part in user_agent.split():
        if part.startswith(("HeadlessChrome/", "Chrome/")):
            return "Chromium " + part.split("/", 1)[1]
    return "a browser"
