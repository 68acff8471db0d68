"""Is the corpus still live? ``python -m tests.security.liveness``: builds the findings' hostile artifacts from
seeded exports and opens each with the runtime's bare loader (no project code) in a throwaway process, to show
that the attack works there and that the corpus's passes are therefore meaningful. Not a test: it runs the
payloads (they only touch a marker and copy a secret, both in a temporary folder). About 4 minutes on a shared 2-core machine.

Last run (torch 2.13, OpenVINO 2026.4, ExecuTorch 1.5.1, ai-edge-litert 2.3): both .pt2 wrote the marker (exit
1), both TorchScript copied the secret (exit 0), OpenVINO -11 (SIGSEGV), ExecuTorch -6 (SIGABRT), LiteRT 0 (the
wrapped offset accepted: the constant is read from before the mapped file)."""

import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers import export_artifact
from tests.security import hostile
from tests.security.hostile import Bait

PT2 = "import torch; torch.export.load({path!r})"
TORCHSCRIPT = "import torch; torch.jit.load({path!r})(torch.zeros(1, 3, 64, 64))"
LOADERS = {
    "pt2": PT2,
    "torchscript": TORCHSCRIPT,
    "openvino": "import openvino as ov; core = ov.Core(); core.compile_model(core.read_model({path!r}), 'CPU')",
    "executorch": "from executorch.runtime import Runtime, Verification; Runtime.get().load_program({path!r}, "
    "verification=Verification.InternalConsistency).load_method('forward')",
    "tflite": "from ai_edge_litert.interpreter import Interpreter; Interpreter(model_path={path!r}).allocate_tensors()",
}
ATTACKS = [
    ("pt2", "rvm.pt2", (), hostile.pt2_sample_inputs_renamed),
    ("pt2", "rvm.pt2", (), hostile.pt2_second_program_sympy),
    ("torchscript", "rvm.torchscript", (), hostile.torchscript_network_uppercase),
    ("torchscript", "rvm.torchscript", (), hostile.torchscript_code_uppercase),
    ("openvino", "rvm.xml", (), hostile.openvino_constant_past_the_bin),
    (
        "executorch",
        "rvm.pte",
        ("--resolution", "128", "96", "--downsample-ratio", "0.5"),
        hostile.executorch_key_not_utf8,
    ),
    ("tflite", "rvm.tflite", (), hostile.litert_buffer_offset_wraps),
]


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        secret = root / "secret.txt"
        secret.write_text("rvm-secret-liveness\n")
        goods = {}
        for target, name, args, build in ATTACKS:
            if name not in goods:
                goods[name] = root / name
                export_artifact(target, "--seed", "0", *args, "--output", goods[name])
            folder = root / build.__name__
            folder.mkdir()
            bait = Bait(secret, root / f"marker-{build.__name__}")
            path = build(goods[name], folder, bait)
            done = subprocess.run([sys.executable, "-c", LOADERS[target].format(path=str(path))], capture_output=True)
            copied = bait.marker.is_file() and bait.marker.read_bytes() == secret.read_bytes()
            print(f"{build.__name__}: exit {done.returncode}, marker {bait.marker.exists()}, secret copied {copied}")


if __name__ == "__main__":
    main()
