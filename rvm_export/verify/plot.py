"""``rvm-verify --plot errors.png``: per-frame error curves per output against the gate, and the
worst frame's alpha error map. People look at this before they read a table."""

from pathlib import Path

import numpy as np

from rvm_export.contract import OUTPUT_NAMES

from .report import Report


def plot_report(report: Report, path: str | Path) -> None:
    """One row per case: max |e| per frame for every output (solid), the noise floor (dotted) and the
    gate's limit (dashed) for alpha; then the |alpha error| map of the worst frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [r for r in report.results if r.stats]
    rows = max(len(results), 1)
    fig, axes = plt.subplots(rows, 2, figsize=(13, 3.6 * rows), squeeze=False, gridspec_kw={"width_ratios": [2, 1]})
    colors = dict(zip(OUTPUT_NAMES, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for row, result in zip(axes, results, strict=False):
        curves, worst = row
        for name in OUTPUT_NAMES:
            stats = [s for s in result.stats if s.output == name]
            if not stats:
                continue
            frames = [s.frame for s in stats]
            curves.plot(frames, [s.max_abs for s in stats], color=colors[name], label=f"{name} max|e|")
            if name == "pha":
                curves.plot(
                    frames, [s.noise_floor["max_abs"] for s in stats], ":", color=colors[name], label="pha noise floor"
                )
                curves.plot(frames, [s.limit["max_abs"] for s in stats], "--", color="black", label="pha limit")
        failed = sorted({f.frame for f in result.failures if f.frame >= 0})
        for frame in failed[:50]:
            curves.axvline(frame, color="red", alpha=0.15)
        curves.set_yscale("log")
        curves.set_xlabel("frame")
        curves.set_ylabel("max |error| vs PyTorch fp32")
        curves.set_title(f"{result.case.label}: {'FAIL' if result.failures else 'pass'}")
        curves.legend(fontsize=7, ncol=3)
        if result.worst_alpha is not None:
            frame, error = result.worst_alpha
            image = worst.imshow(error, cmap="magma", vmin=0, vmax=max(float(error.max()), 1e-12))
            fig.colorbar(image, ax=worst, fraction=0.046)
            worst.set_title(f"|alpha error|, worst frame {frame} (max {float(np.max(error)):.2g})")
        worst.axis("off")
    m = report.metadata
    fig.suptitle(f"{Path(report.artifact).name} [{report.kind}, {m.precision}]: {'PASS' if report.passed else 'FAIL'}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
