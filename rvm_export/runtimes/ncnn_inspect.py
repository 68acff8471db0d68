"""Inspection of an ncnn model (``.param`` + ``.bin``) before ncnn reads it: the ``.param`` parsed as ncnn's token
reader reads it (``contract/ncnn_param.py``); built-in layer types only, blobs written once before they are read
and counted as declared, nothing after the last layer but the metadata line, weight counts the ``.bin`` can hold.
"""

from pathlib import Path
from typing import Set

from .inspection_readers import companion_bin_size, read_limited, refuse, regular_file, show

# ncnn's built-in layers (src/CMakeLists.txt's ncnn_add_layer list, ncnn 1.0.20261020). A type outside it loads
# only when the app registers a custom layer: code of its own that the artifact would then pick.
NCNN_LAYERS = frozenset(
    """AbsVal ArgMax BatchNorm Bias BNLL Concat Convolution Crop Deconvolution Dropout Eltwise ELU Embed Exp Flatten
    InnerProduct Input Log LRN MemoryData MVN Pooling Power PReLU Proposal Reduction ReLU Reshape ROIPooling Scale
    Sigmoid Slice Softmax Split SPP TanH Threshold Tile RNN LSTM BinaryOp UnaryOp ConvolutionDepthWise Padding Squeeze
    ExpandDims Normalize Permute PriorBox DetectionOutput Interp DeconvolutionDepthWise ShuffleChannel InstanceNorm
    Clip Reorg YoloDetectionOutput Quantize Dequantize Yolov3DetectionOutput PSROIPooling ROIAlign Packing Requantize
    Cast HardSigmoid SELU HardSwish Noop PixelShuffle DeepCopy Mish StatisticsPooling Swish Gemm GroupNorm LayerNorm
    Softplus GRU MultiHeadAttention GELU Convolution1D Pooling1D ConvolutionDepthWise1D Convolution3D
    ConvolutionDepthWise3D Pooling3D MatMul Deconvolution1D DeconvolutionDepthWise1D Deconvolution3D
    DeconvolutionDepthWise3D Einsum DeformableConv2D GLU Fold Unfold GridSample CumulativeSum CopyTo Erf Diag CELU
    Shrink RMSNorm Spectrogram InverseSpectrogram Flip SDPA RotaryEmbed""".split()
)
NCNN_MAX_LAYERS = 100_000
# Layers whose weights are in the .bin, and the parameter that gives their element count (weight_data_size):
# each is at least 2 bytes an element (fp16), so a count the .bin cannot hold is refused before ncnn allocates it.
NCNN_WEIGHT_COUNT = {"Convolution": "6", "ConvolutionDepthWise": "6", "Deconvolution": "6",
                     "DeconvolutionDepthWise": "6", "InnerProduct": "2", "Gemm": None}  # fmt: skip


def inspect(path: Path) -> None:
    from rvm_export.contract import ncnn_param

    regular_file(path, path)
    size = companion_bin_size(path)
    try:
        param = ncnn_param.parse(read_limited(path, path).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise refuse(path, f"its .param is not one ncnn reads as rvm-export writes it ({exc})")
    if len(param.layers) > NCNN_MAX_LAYERS:
        raise refuse(path, f"it declares {len(param.layers)} layers, more than any RVM graph")
    extra = [line for line in param.trailer if not line.startswith(ncnn_param.METADATA_PREFIX)]
    if extra or len(param.trailer) > 1:
        raise refuse(path, "text after the last layer that is not one rvm metadata line")
    made: Set[str] = set()
    read: Set[str] = set()
    weight_bytes = 0
    for layer in param.layers:
        if layer.type not in NCNN_LAYERS:
            raise refuse(path, f"layer type {show(layer.type)} is not one of ncnn's built-in layers: a custom "
                          "layer the app would have to register code for")  # fmt: skip
        for blob in layer.bottoms:
            if blob not in made:
                raise refuse(path, f"layer {show(layer.name)} reads blob {show(blob)}, which no earlier layer writes")
            if blob in read:  # ncnn gives a blob one consumer (Split makes copies); two crash it (SIGSEGV)
                raise refuse(path, f"blob {show(blob)} is read by two layers; ncnn needs a Split between them")
            read.add(blob)
        for blob in layer.tops:
            if blob in made:
                raise refuse(path, f"blob {show(blob)} is written twice")
            made.add(blob)
        for key in layer.params:
            number = -int(key) - 23300 if int(key) <= -23300 else int(key)
            if not 0 <= number < 32:  # NCNN_MAX_PARAM_COUNT
                raise refuse(path, f"layer {show(layer.name)} has parameter {key}, outside ncnn's 0..31")
        try:
            key = NCNN_WEIGHT_COUNT.get(layer.type, "")
            if key:
                weight_bytes += 2 * max(layer.integer(key), 0)
            if layer.type == "MemoryData":
                dims = [max(layer.integer(k), 1) for k in ("0", "1", "11", "2")]
                weight_bytes += 4 * dims[0] * dims[1] * dims[2] * dims[3]
        except ValueError as exc:
            raise refuse(path, str(exc))
    if len(made) != param.blob_count:
        raise refuse(path, f"it declares {param.blob_count} blobs and its layers write {len(made)}")
    if weight_bytes > size:
        raise refuse(path, f"its layers declare {weight_bytes} bytes of weights and {path.stem}.bin holds {size}")
