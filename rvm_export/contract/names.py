"""Input and output names shared by every exported format (the official RVM exports use them)."""

STATE_INPUTS = ("r1i", "r2i", "r3i", "r4i")
STATE_OUTPUTS = ("r1o", "r2o", "r3o", "r4o")
INPUT_NAMES = ("src", *STATE_INPUTS, "downsample_ratio")
OUTPUT_NAMES = ("fgr", "pha", *STATE_OUTPUTS)
