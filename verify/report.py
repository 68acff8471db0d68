"""Verification report: a summary table for people, JSON for machines (and the manifest)."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List

from contract import OUTPUT_NAMES, ArtifactMetadata
from contract.files import write_atomic

from .harness import CaseResult
from .tolerances import PrecisionTolerance


@dataclass
class Report:
    artifact: str
    kind: str
    metadata: ArtifactMetadata
    tolerance: PrecisionTolerance
    results: List[CaseResult]

    @property
    def failures(self) -> list:
        return [f for r in self.results for f in r.failures]

    @property
    def passed(self) -> bool:
        return not self.failures

    def worst(self) -> Dict[str, Dict[str, float]]:
        """Worst value of each statistic per output over all cases and frames."""
        out: Dict[str, Dict[str, float]] = {}
        for result in self.results:
            for s in result.stats:
                w = out.setdefault(s.output, {"max_abs": 0.0, "q999": 0.0, "mean_abs": 0.0})
                for k in w:
                    w[k] = max(w[k], getattr(s, k))
            for a in result.alpha:
                w = out.setdefault("alpha", {"mad_1e3": 0.0, "mse_1e3": 0.0, "dtssd_1e2": 0.0})
                w["mad_1e3"] = max(w["mad_1e3"], a.mad_1e3)
                w["mse_1e3"] = max(w["mse_1e3"], a.mse_1e3)
                w["dtssd_1e2"] = max(w["dtssd_1e2"], a.dtssd_1e2 or 0.0)
        return out

    def summary(self) -> Dict[str, Any]:
        """Compact form for the manifest."""
        return {
            "passed": self.passed,
            "cases": [r.case.label for r in self.results],
            "worst": self.worst(),
            "failures": [f.message() for f in self.failures[:10]],
        }

    def to_dict(self) -> Dict[str, Any]:
        return {
            "artifact": self.artifact,
            "kind": self.kind,
            "metadata": asdict(self.metadata),
            "tolerance": asdict(self.tolerance),
            "passed": self.passed,
            "worst": self.worst(),
            "failures": [f.to_dict() for f in self.failures],
            "cases": [
                {
                    "case": asdict(r.case),
                    "stats": [asdict(s) for s in r.stats],
                    "alpha": [asdict(a) for a in r.alpha],
                }
                for r in self.results
            ],
        }

    def write_json(self, path: str | Path) -> None:
        """Write the report atomically (all or nothing); raises OSError."""
        write_atomic(path, json.dumps(self.to_dict(), indent=1).encode())

    def table(self) -> str:
        m = self.metadata
        lines = [
            f"artifact  {self.artifact}  [{self.kind}, {m.variant}, {m.refiner}, {m.precision}]",
            f"weights   {m.weights_label}",
            "",
            f"{'case':<26}{'output':<8}{'max|e|':>10}{'q99.9|e|':>10}{'mean|e|':>10}   alpha MAD/MSE x1e3, dtSSD x1e2",
        ]
        for result in self.results:
            alpha = result.alpha
            for name in OUTPUT_NAMES:
                stats = [s for s in result.stats if s.output == name]
                if not stats:
                    continue
                row = (
                    f"{result.case.label:<26}{name:<8}{max(s.max_abs for s in stats):>10.2e}"
                    f"{max(s.q999 for s in stats):>10.2e}{max(s.mean_abs for s in stats):>10.2e}"
                )
                if name == "pha" and alpha:
                    dt = max((a.dtssd_1e2 or 0.0) for a in alpha)
                    row += f"   {max(a.mad_1e3 for a in alpha):.3f} / {max(a.mse_1e3 for a in alpha):.4f}, {dt:.3f}"
                lines.append(row)
        tol = self.tolerance
        lines += [
            "",
            f"tolerance ({m.precision}): image max {tol.image.max_abs:g} q99.9 {tol.image.q999:g} "
            f"mean {tol.image.mean_abs:g}; state max {tol.state.max_abs:g} q99.9 {tol.state.q999:g} "
            f"mean {tol.state.mean_abs:g}; alpha MAD x1e3 {tol.alpha_mad_1e3:g}",
        ]
        if self.passed:
            lines.append("PASS: every output of every frame is within tolerance")
        else:
            lines.append(f"FAIL: {len(self.failures)} check(s) failed; first: {self.failures[0].message()}")
            lines += [f"  - {f.message()}" for f in self.failures[1:6]]
        return "\n".join(lines)
