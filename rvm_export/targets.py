"""The registry: one :class:`TargetSpec` per export target, and everything that lists targets derives from it.

The ``rvm-export`` subcommands (and their help), default artifact names, missing-extra messages, the
runner for a file on disk, the ``make export-all`` jobs and the files an artifact consists of (manifest
hashes, sizes in rvm-bench) all read this table. Adding a target is three files: its spec here, its
exporter (``rvm_export/export/<target>.py`` with a click ``command``) and its runner
(``rvm_export/runtimes/<runtime>.py``). The conformance tests pick it up from :data:`TARGETS`.

Nothing here imports a runtime or an exporter: entries name them as ``"module:attribute"`` and are
imported on use, so ``rvm-export onnx`` works without TensorFlow installed.
"""

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from rvm_export.contract.errors import UnknownArtifactError

# Official CoreML release: (width, height, downsample_ratio); `s` is the ratio in the file name.
COREML_RELEASE = ((1280, 720, 0.375), (1920, 1080, 0.25))
COREML_SUFFIXES = {"mlprogram": ".mlpackage", "neuralnetwork": ".mlmodel"}
ONNX_DEFAULT_OPSET = 12
DEFAULT_FOLDER = "artifacts"  # where rvm-export writes when no --output is given


@dataclass(frozen=True)
class ReleaseJob:
    """One artifact of ``make export-all``: the ``rvm-export`` options and the name they produce."""

    target: str
    variant: str
    args: Tuple[str, ...]  # target options besides --checkpoint/--variant/--seed/--output
    name: str


@dataclass(frozen=True)
class TargetSpec:
    """Everything the project knows about one target, in one place."""

    name: str  # rvm-export subcommand and the ``format`` in the artifact's metadata
    title: str  # what users call the format
    summary: str  # one line for ``rvm-export --help`` (listed without importing the exporter)
    exporter: str  # "module:attribute" of its click command
    runner: str  # "module:Class" of the runner that runs its artifacts
    inspector: str  # "module:function" that checks an artifact as data before anything of it runs
    artifact_name: Callable[..., str]  # (variant, **target options) -> file or folder name
    release: Callable[[str], List[Tuple[Tuple[str, ...], Dict[str, object]]]]  # variant -> [(args, name options)]
    precisions: Tuple[str, ...] = ("fp32",)
    layout: str = "NCHW"
    suffixes: Tuple[str, ...] = ()  # file suffixes of its artifacts (for runner dispatch)
    markers: Tuple[str, ...] = ()  # files that make a folder one of its artifacts
    companions: Tuple[str, ...] = ()  # sibling files with the same stem that belong to the artifact
    export_extra: Optional[str] = None  # pip extra that rvm-export needs (None: the base install)
    runner_extra: Optional[str] = None  # pip extra that running its artifacts needs
    extras: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  # its extras -> top-level modules they install
    backends: Tuple[str, ...] = ()  # runtime backends a user can pick (rvm-verify --tfjs-backend); the first is
    backend_runner: Optional[str] = None  # run by ``runner``, the others by this "module:Class" (backend argument)
    packages: Tuple[str, ...] = ()  # distributions whose versions the artifact's metadata records
    is_folder: bool = False  # the artifact is a folder (SavedModel, TF.js); see also ``folder_suffixes``
    folder_suffixes: Tuple[str, ...] = ()  # suffixes that are folders (.mlpackage)
    entry_names: Tuple[str, ...] = ()  # file names that open a folder artifact by themselves (TF.js model.json)

    def jobs(self, variant: str) -> List[ReleaseJob]:
        return [
            ReleaseJob(self.name, variant, tuple(args), self.artifact_name(variant, **options))
            for args, options in self.release(variant)
        ]

    def files(self, path: Path) -> List[Path]:
        """The files an artifact at ``path`` consists of (a folder's files; a file with its companions)."""
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.is_file())
        extra = [path.with_suffix(s) for s in self.companions]
        return [path] + [p for p in extra if p.is_file()]


def _mobilenet_only(jobs: Callable[[], list]) -> Callable[[str], list]:
    """Release jobs for MobileNetV3 alone (the phone and web models; each artifact costs a verification)."""
    return lambda variant: jobs() if variant == "mobilenetv3" else []


# --- Default names. Options left at their defaults add nothing to the name. -------------------------


def _torchscript_name(variant: str, precision: str = "fp32", freeze: bool = False) -> str:
    return f"rvm_{variant}_{precision}{'_frozen' if freeze else ''}.torchscript"


def _onnx_name(
    variant: str,
    precision: str = "fp32",
    opset: int = ONNX_DEFAULT_OPSET,
    static: Optional[Tuple[int, int]] = None,
    downsample_ratio: Optional[float] = None,
) -> str:
    name = f"rvm_{variant}_{precision}"
    if static:
        name += f"_{static[0]}x{static[1]}"
    if downsample_ratio is not None:
        name += f"_s{downsample_ratio:g}"
    if opset != ONNX_DEFAULT_OPSET:
        name += f"_opset{opset}"
    return name + ".onnx"


def _coreml_name(
    variant: str, width: int, height: int, downsample_ratio: float, precision: str = "fp16", fmt: str = "mlprogram"
) -> str:
    return f"rvm_{variant}_{width}x{height}_s{downsample_ratio:g}_{precision}{COREML_SUFFIXES[fmt]}"


def _coreml_release() -> list:
    jobs = []
    for width, height, ratio in COREML_RELEASE:
        for precision in ("fp16", "int8"):
            for fmt in ("neuralnetwork", "mlprogram"):
                args = ("--resolution", str(width), str(height), "--downsample-ratio", str(ratio))
                args += ("--precision", precision, "--format", fmt)
                jobs.append(
                    (args, dict(width=width, height=height, downsample_ratio=ratio, precision=precision, fmt=fmt))
                )
    return jobs


def _executorch_name(variant: str, width: int, height: int, downsample_ratio: float, precision: str = "fp32") -> str:
    return f"rvm_{variant}_{width}x{height}_s{downsample_ratio:g}_{precision}.pte"


def _executorch_release() -> list:
    """One fixed-size ExecuTorch program per size of the CoreML release (a phone's camera stream has one size)."""
    return [
        (("--resolution", str(w), str(h), "--downsample-ratio", str(r)), dict(width=w, height=h, downsample_ratio=r))
        for w, h, r in COREML_RELEASE
    ]


def _precisions(*precisions: str) -> Callable[[str], list]:
    return lambda variant: [(("--precision", p), {"precision": p}) for p in precisions]


TARGETS: Dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec(
            name="torchscript",
            title="TorchScript",
            summary="Scripted TorchScript module, runtime downsample_ratio, fp32/fp16/bf16, frozen or not.",
            exporter="rvm_export.export.torchscript:command",
            runner="rvm_export.runtimes.torch_runner:TorchScriptRunner",
            inspector="rvm_export.runtimes.torchscript_inspect:inspect",
            artifact_name=_torchscript_name,
            release=lambda variant: [
                (("--precision", p, "--freeze" if frozen else "--no-freeze"), {"precision": p, "freeze": frozen})
                for p in ("fp32", "fp16")
                for frozen in (False, True)
            ],
            precisions=("fp32", "fp16", "bf16"),
            suffixes=(".torchscript", ".pt", ".ts"),
        ),
        TargetSpec(
            name="onnx",
            title="ONNX",
            summary="ONNX for ONNX Runtime: dynamic B/H/W, runtime ratio; --static WxH for TensorRT/NPUs.",
            exporter="rvm_export.export.onnx:command",
            runner="rvm_export.runtimes.onnxruntime:OnnxRuntimeRunner",
            inspector="rvm_export.runtimes.onnx_inspect:inspect",
            artifact_name=_onnx_name,
            release=lambda variant: [
                (("--precision", p, "--opset", str(ONNX_DEFAULT_OPSET)), {"precision": p}) for p in ("fp32", "fp16")
            ],
            precisions=("fp32", "fp16"),
            suffixes=(".onnx",),
            export_extra="onnx",
            runner_extra="onnx",
            packages=("onnx", "onnxruntime", "onnxslim"),
            extras={"onnx": ("onnx", "onnxruntime", "onnxslim")},
        ),
        TargetSpec(
            name="tensorflow",
            title="TensorFlow SavedModel",
            summary="Channels-last TensorFlow SavedModel with a runtime downsample_ratio.",
            exporter="rvm_export.export.tensorflow:command",
            runner="rvm_export.runtimes.tensorflow:TensorFlowRunner",
            inspector="rvm_export.runtimes.tensorflow_inspect:inspect",
            artifact_name=lambda variant: f"rvm_{variant}_tf",
            release=lambda variant: [((), {})],
            layout="NHWC",
            markers=("saved_model.pb",),
            is_folder=True,
            export_extra="tensorflow",
            runner_extra="tensorflow",
            packages=("tensorflow", "keras"),
            extras={"tensorflow": ("tensorflow", "tf_keras")},
        ),
        TargetSpec(
            name="tfjs",
            title="TensorFlow.js",
            summary="TF.js graph model (channels-last) for the browser; fp32, uint16 or uint8 weights.",
            exporter="rvm_export.export.tfjs:command",
            runner="rvm_export.runtimes.tfjs:TfjsRunner",
            inspector="rvm_export.runtimes.tfjs_inspect:inspect",
            artifact_name=lambda variant, quantize="none": (
                f"rvm_{variant}{'' if quantize == 'none' else '_' + quantize}_tfjs"
            ),
            # fp32, uint8 (the official web format) and uint16 (half the size, close to fp32)
            release=_mobilenet_only(
                lambda: [(("--quantize", q), {"quantize": q}) for q in ("none", "uint8", "uint16")]
            ),
            precisions=("fp32", "uint16", "uint8"),
            layout="NHWC",
            markers=("model.json",),
            entry_names=("model.json",),
            is_folder=True,
            export_extra="tfjs",
            runner_extra=None,  # runs in Node.js (npm ci in rvm_export/runtimes/node) or Chromium
            packages=("tensorflow",),
            extras={"tfjs": ("tensorflow",)},
            backends=("node", "webgl", "webgl-f16", "wasm", "cpu"),  # node: Node.js, WebAssembly; the rest: Chromium
            backend_runner="rvm_export.runtimes.tfjs_browser:BrowserTfjsRunner",
        ),
        TargetSpec(
            name="coreml",
            title="CoreML",
            summary="Fixed-resolution CoreML model (.mlmodel or .mlpackage): image in, images and states out.",
            exporter="rvm_export.export.coreml:command",
            runner="rvm_export.runtimes.coreml:CoreMLRunner",
            inspector="rvm_export.runtimes.coreml_inspect:inspect",
            artifact_name=_coreml_name,
            release=_mobilenet_only(_coreml_release),
            precisions=("fp32", "fp16", "int8"),
            suffixes=(".mlmodel", ".mlpackage"),
            markers=("Manifest.json",),
            folder_suffixes=(".mlpackage",),
            export_extra="coreml",
            runner_extra="coreml",
            packages=("coremltools", "numpy"),
            extras={"coreml": ("coremltools",)},
        ),
        TargetSpec(
            name="pt2",
            title="torch.export",
            summary="torch.export program (.pt2) that loads with torch.export.load alone.",
            exporter="rvm_export.export.pt2:command",
            runner="rvm_export.runtimes.torch_export:TorchExportRunner",
            inspector="rvm_export.runtimes.pt2_inspect:inspect",
            artifact_name=lambda variant, precision="fp32": f"rvm_{variant}_{precision}.pt2",
            # fp32 only in the release: each ExportedProgram costs ~30 s to trace and verify
            release=_mobilenet_only(lambda: [(("--precision", "fp32"), {"precision": "fp32"})]),
            precisions=("fp32", "fp16"),
            suffixes=(".pt2",),
            extras={"pt2": ()},
        ),
        TargetSpec(
            name="openvino",
            title="OpenVINO IR",
            summary="OpenVINO IR (.xml + .bin), dynamic shapes, runtime downsample_ratio.",
            exporter="rvm_export.export.openvino:command",
            runner="rvm_export.runtimes.openvino:OpenVinoRunner",
            inspector="rvm_export.runtimes.openvino_inspect:inspect",
            artifact_name=lambda variant, precision="fp32": f"rvm_{variant}_{precision}_openvino.xml",
            release=_mobilenet_only(lambda: _precisions("fp32", "fp16")("mobilenetv3")),
            precisions=("fp32", "fp16"),
            suffixes=(".xml",),
            companions=(".bin",),
            export_extra="openvino",
            runner_extra="openvino",
            packages=("openvino", "onnx", "onnxslim"),
            extras={"openvino": ("openvino", "onnx", "onnxslim")},
        ),
        TargetSpec(
            name="mnn",
            title="MNN",
            summary="MNN model (.mnn) from the ONNX export (Android/iOS): dynamic B/H/W, runtime downsample_ratio.",
            exporter="rvm_export.export.mnn:command",
            runner="rvm_export.runtimes.mnn:MnnRunner",
            inspector="rvm_export.runtimes.mnn_inspect:inspect",
            artifact_name=lambda variant: f"rvm_{variant}_fp32.mnn",
            release=_mobilenet_only(lambda: [((), {})]),  # fp32 only: the converter's --fp16 fails parity
            suffixes=(".mnn",),
            export_extra="mnn",
            runner_extra="mnn",
            packages=("mnn", "onnx", "onnxslim"),
            extras={"mnn": ("MNN", "onnx", "onnxslim")},
        ),
        TargetSpec(
            name="tflite",
            title="LiteRT (TFLite)",
            summary="LiteRT (TFLite) flatbuffer, channels-last, dynamic shapes, runtime ratio.",
            exporter="rvm_export.export.tflite:command",
            runner="rvm_export.runtimes.litert:LiteRtRunner",
            inspector="rvm_export.runtimes.tflite_inspect:inspect",
            artifact_name=lambda variant, precision="fp32": f"rvm_{variant}_{precision}.tflite",
            release=_mobilenet_only(lambda: _precisions("fp32")("mobilenetv3")),
            layout="NHWC",
            suffixes=(".tflite",),
            export_extra="tflite",
            runner_extra="tflite",
            packages=("tensorflow", "ai-edge-litert"),
            extras={"tflite": ("tensorflow", "ai_edge_litert")},
        ),
        TargetSpec(
            name="ncnn",
            title="ncnn",
            summary="ncnn .param + .bin via pnnx (Android/iOS): dynamic frame size, downsample_ratio fixed at export, fp32/fp16 weights.",
            exporter="rvm_export.export.ncnn:command",
            runner="rvm_export.runtimes.ncnn:NcnnRunner",
            inspector="rvm_export.runtimes.ncnn_inspect:inspect",
            artifact_name=lambda variant, downsample_ratio=0.375, precision="fp32": (
                f"rvm_{variant}_{precision}_s{downsample_ratio:g}.ncnn.param"
            ),
            # 720p (s0.375) and 1080p (s0.25) frames, as CoreML's release
            release=_mobilenet_only(
                lambda: [
                    (("--downsample-ratio", str(r), "--precision", p), {"downsample_ratio": r, "precision": p})
                    for r in (0.375, 0.25)
                    for p in ("fp32", "fp16")
                ]
            ),
            suffixes=(".param",),
            companions=(".bin",),
            export_extra="ncnn",
            runner_extra="ncnn",
            packages=("ncnn", "pnnx"),
            extras={"ncnn": ("ncnn", "pnnx")},
        ),
        TargetSpec(
            name="executorch",
            title="ExecuTorch",
            summary="ExecuTorch program (.pte, XNNPACK delegate) for Android/iOS; frame size and ratio fixed at export.",
            exporter="rvm_export.export.executorch:command",
            runner="rvm_export.runtimes.executorch:ExecuTorchRunner",
            inspector="rvm_export.runtimes.executorch_inspect:inspect",
            artifact_name=_executorch_name,
            release=_mobilenet_only(_executorch_release),
            suffixes=(".pte",),
            export_extra="executorch",
            runner_extra="executorch",
            packages=("executorch",),
            extras={"executorch": ("executorch",)},
        ),
    )
}


def load_entry(entry: str) -> Any:
    """``"package.module:attribute"`` (an exporter's command, a runner class) -> the attribute; imports the module."""
    module, attribute = entry.split(":")
    return getattr(importlib.import_module(module), attribute)


def spec(name: str) -> TargetSpec:
    return TARGETS[name]


def artifact_name(target: str, variant: str, **options: object) -> str:
    """The name ``make export-all`` gives ``target``'s artifact with these options (rvm-export's default)."""
    return TARGETS[target].artifact_name(variant, **options)


def target_of(path: str | Path) -> TargetSpec:
    """The target whose artifacts look like ``path``: a folder by its marker files, a file by its suffix."""
    path = Path(path)
    if path.is_dir():
        for target in TARGETS.values():
            if path.suffix in target.folder_suffixes or any((path / m).is_file() for m in target.markers):
                return target
    for target in TARGETS.values():
        if path.name in target.entry_names or path.suffix in target.suffixes:
            return target
    known = sorted(s for t in TARGETS.values() for s in t.suffixes)
    folders = ", ".join(f"{t.title} folder ({'/'.join(t.markers)})" for t in TARGETS.values() if t.is_folder)
    raise UnknownArtifactError(
        f"cannot tell what kind of artifact {path} is; expected one of {', '.join(known)}, or a {folders}"
    )


def artifact_files(path: Path) -> List[Path]:
    """The files the artifact at ``path`` consists of (the file alone when no target claims it)."""
    try:
        return target_of(path).files(path)
    except UnknownArtifactError:
        return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def backends() -> Tuple[str, ...]:
    """Every runtime backend some target's artifacts can be run on."""
    return tuple(dict.fromkeys(b for t in TARGETS.values() for b in t.backends))


def folder_markers() -> Tuple[str, ...]:
    """Files that mark a folder as an earlier artifact which an export may replace."""
    return tuple(m for t in TARGETS.values() for m in t.markers)


def release_packages() -> Tuple[str, ...]:
    """Every distribution some target records, for the manifest."""
    return tuple(dict.fromkeys(p for t in TARGETS.values() for p in t.packages))


__all__ = [
    "DEFAULT_FOLDER",
    "TARGETS",
    "ReleaseJob",
    "TargetSpec",
    "UnknownArtifactError",
    "artifact_files",
    "artifact_name",
    "backends",
    "folder_markers",
    "load_entry",
    "release_packages",
    "spec",
    "target_of",
]
