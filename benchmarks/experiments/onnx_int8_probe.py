"""Does int8 hold for part of the network? Quantize only the backbone's convolutions of an fp32 artifact.

    rvm-export onnx --checkpoint PTH --opset 17 --output rvm_fp32_op17.onnx   # per-channel QDQ needs opset >= 13
    .venv/bin/python benchmarks/experiments/onnx_int8_probe.py --fp32 rvm_fp32_op17.onnx --output backbone_int8.onnx
    .venv/bin/rvm-bench rvm_fp32_op17.onnx backbone_int8.onnx

ONNX Runtime static QDQ quantization (per-channel int8 weights, uint8 activations), calibrated on the
verifier's real-photograph sequences (``verify/sequence.py``), restricted to the MobileNetV3 encoder's
convolutions: the decoder's GRUs feed their states back frame after frame and the guided filter divides
by a variance, the parts least likely to tolerate it. The result is written with the fp32 artifact's
metadata, labelled precision "int8", so ``rvm-bench``/``rvm-verify`` judge it against the int8 bounds.
A probe, not an export option: see docs/onnx.md ("What did not help") for what it measured.
"""

import argparse
import json
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import numpy as np
import onnx

from rvm_export.contract import METADATA_KEY, STATE_INPUTS
from rvm_export.verify.sequence import Case, build_sequence


class SequenceReader:
    """Calibration feeds: real frames with the states the artifact itself produces."""

    def __init__(self, model_path: Path, cases: List[Case]) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        self.feeds = iter(self._feeds(cases))

    def _feeds(self, cases: List[Case]) -> Iterator[Dict[str, np.ndarray]]:
        for case in cases:
            state = [np.zeros([1, 1, 1, 1], np.float32)] * 4
            for src in build_sequence(case):
                feed = {"src": src, **dict(zip(STATE_INPUTS, state, strict=True))}
                feed["downsample_ratio"] = np.asarray([case.ratio], np.float32)
                yield feed
                state = self.session.run(None, feed)[2:]

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self.feeds, None)


SCOPES = {
    "backbone": ("/backbone/",),  # the MobileNetV3 encoder only
    "network": (
        "/backbone/",
        "/aspp/",
        "/decoder/",
        "/project_mat/",
    ),  # every low-resolution convolution (an upper bound on speed)
}


def quantize_backbone(fp32: Path, output: Path, scope: str = "backbone") -> Path:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(fp32))
    backbone = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name.startswith(SCOPES[scope])]
    others = [n.name for n in model.graph.node if n.name not in backbone]
    cases = [Case(512, 288, 1, 1.0, 4), Case(640, 360, 1, 0.5, 4)]
    quantize_static(
        str(fp32),
        str(output),
        SequenceReader(fp32, cases),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=others,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    quantized = onnx.load(str(output))
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY in props:
        meta = json.loads(props[METADATA_KEY])
        meta["precision"] = "int8"
        meta.setdefault("options", {})["int8_probe"] = f"{scope} convs only ({len(backbone)} of them)"
        onnx.helper.set_model_props(quantized, {METADATA_KEY: json.dumps(meta)})
    onnx.save(quantized, str(output))
    return output


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", type=Path, required=True, help="An fp32 artifact written by rvm-export onnx.")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--scope", choices=sorted(SCOPES), default="backbone", help="which convolutions to quantize")
    args = parser.parse_args(argv)
    print(f"wrote {quantize_backbone(args.fp32, args.output, args.scope)}")


if __name__ == "__main__":
    main()
