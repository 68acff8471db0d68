"""The web demo (web/index.html) in headless Chromium: it mattes a short clip of the test photograph
with the real weights, and its alpha agrees with PyTorch's on where the person is.

Set RVM_DEMO_SCREENSHOT=path.png to keep the screenshot (always written to the test's tmp folder)."""

import base64
import io
import os
import shutil
from pathlib import Path

import numpy as np

from tests.helpers import ArtifactCache, require, requires_browser

tf = require("tensorflow")
require("playwright")
av = require("av")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from rvm_export.runtimes.tfjs_browser import BrowserSession  # noqa: E402
from rvm_export.verify.sequence import Case, build_sequence  # noqa: E402

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
CLIP = Case(160, 96, 1, 0.5, 12)  # width, height, batch, ratio, frames
FPS = 6


pytestmark = requires_browser()


def write_clip(frames: np.ndarray, path: Path) -> None:
    """[T,3,H,W] floats in 0..1 -> a VP8 WebM (royalty-free: every Chromium build decodes it)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = frames.shape[3], frames.shape[2], "yuv420p"
        stream.options = {"crf": "10", "b:v": "1M"}
        for frame in frames:
            rgb = np.ascontiguousarray((frame.transpose(1, 2, 0) * 255).round().astype(np.uint8))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


def reference_alpha(model, frames: np.ndarray, ratio: float) -> np.ndarray:
    """PyTorch's alpha for each frame of the clip, states carried: [T,H,W]."""
    rec, out = [None] * 4, []
    with torch.no_grad():
        for frame in frames:
            _, pha, *rec = model(torch.from_numpy(frame[None]), *rec, downsample_ratio=ratio)
            out.append(pha[0, 0].numpy())
    return np.stack(out)


def canvas_pixels(page, element_id: str) -> np.ndarray:
    url = page.evaluate(f"document.getElementById('{element_id}').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))


def wait_for_frames(page, count: int) -> None:
    page.wait_for_function(f"window.demo.frames >= {count} || window.demo.error !== null", timeout=240_000)
    error = page.evaluate("window.demo.error")
    assert error is None, error


def test_demo_mattes_a_clip(tmp_path, real_model, artifacts: ArtifactCache):
    frames = build_sequence(CLIP)[:, 0]
    write_clip(frames, tmp_path / "clip.webm")
    model_dir = artifacts.export("tfjs", "rvm_mobilenetv3_uint16_tfjs", "--quantize", "uint16")

    session = BrowserSession.acquire()
    origin = session.mount("/demo/", WEB_DIR)
    session.mount("/model/", model_dir)
    session.mount("/clip/", tmp_path)
    context = session.browser.new_context(viewport={"width": 1400, "height": 520})
    try:
        page = context.new_page()
        page.goto(f"{origin}index.html?model=/model/model.json&video=/clip/clip.webm&backend=webgl&ratio=0.5")
        wait_for_frames(page, 4)
        alpha = canvas_pixels(page, "alpha")[..., 0] / 255.0
        assert alpha.shape == (CLIP.height, CLIP.width)
        # The clip pans slowly and the demo skips frames as it plays, so compare with what PyTorch
        # says of every frame: where it sees the person throughout, and where it never does.
        ref = reference_alpha(real_model, frames, CLIP.ratio)
        person, background = ref.min(0) > 0.5, ref.max(0) < 0.1
        assert person.mean() > 0.1 and background.mean() > 0.2  # the clip has both
        print(f"demo alpha: person {alpha[person].mean():.3f}, background {alpha[background].mean():.3f}")
        # Measured 0.59-0.68 over several runs on the moving-camera sequence (0.92 on the old slow pan): which frames
        # the playing page skips is a timing matter, so this is a plausibility bound (more person than not where
        # PyTorch always sees the person); the browser parity tests carry the numeric claims.
        assert alpha[person].mean() > 0.5, alpha[person].mean()
        assert alpha[background].mean() < 0.1, alpha[background].mean()
        # The page's own running figure: measured 0.17-0.5 on the moving-camera clip, depending on which frames the
        # page skipped while playing (a timing matter); the person/background checks above carry the content.
        assert 0.1 < page.evaluate("window.demo.alphaMean") < 0.9
        assert page.evaluate("window.demo.fps") > 0
        assert "SwiftShader" in page.evaluate("window.demo.renderer")
        assert float(page.text_content("#fps")) > 0

        # Pick another backend and ratio in the page: it reloads the model and keeps matting.
        page.select_option("#ratio", "0.25")
        page.select_option("#backend", "wasm")
        page.wait_for_function("window.demo.backend === 'wasm' && window.demo.ratio === 0.25")
        wait_for_frames(page, 3)
        page.select_option("#ratio", "0.5")
        page.select_option("#backend", "webgl")
        page.wait_for_function("window.demo.backend === 'webgl' && window.demo.ratio === 0.5")
        wait_for_frames(page, 3)
        alpha = canvas_pixels(page, "alpha")[..., 0] / 255.0
        print(f"after the switch: person {alpha[person].mean():.3f}, background {alpha[background].mean():.3f}")
        assert alpha[person].mean() > 0.5 and alpha[background].mean() < 0.1
        shot = tmp_path / "demo.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("RVM_DEMO_SCREENSHOT"):
            shutil.copy(shot, os.environ["RVM_DEMO_SCREENSHOT"])
    finally:
        context.close()
        for prefix in ("/demo/", "/model/", "/clip/"):
            session.server.mounts.pop(prefix, None)
        BrowserSession.release()
