"""Verification report: a summary table for people, JSON for machines (and the manifest)."""

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rvm_export.contract import OUTPUT_NAMES, ArtifactMetadata
from rvm_export.contract.files import write_atomic

from .compare import Failure
from .drift import BLOCK, Drift, drifts
from .harness import CaseResult
from .tolerances import PrecisionTolerance


@dataclass
class Report:
    artifact: str
    kind: str
    metadata: ArtifactMetadata
    tolerance: PrecisionTolerance
    results: List[CaseResult]
    artifact_failures: List[Failure] = field(default_factory=list)  # e.g. a mislabelled precision
    localization: Optional[str] = None  # the `first divergence:` line of --localize
    runtime: str = ""  # where it ran (runner.describe()), when the runner says
    precision: str = ""  # the precision judged at, when not the artifact's own (runner.judged_precision())
    sandbox: str = ""  # how the runtime's child process was confined (ChildRunner.confinement)
    confined: bool = True  # False: the report's first line says the runtime ran unconfined

    @property
    def failures(self) -> List[Failure]:
        return self.artifact_failures + [f for r in self.results for f in r.failures]

    @property
    def passed(self) -> bool:
        return not self.failures

    def drifts(self) -> List[Drift]:
        return [d for r in self.results for d in drifts(r.case.label, r.stats).values()]

    def worst(self) -> Dict[str, Dict[str, float]]:
        """Worst value of each statistic per output over all cases and frames (ratio: to the noise floor)."""
        out: Dict[str, Dict[str, float]] = {}
        for result in self.results:
            for s in result.stats:
                w = out.setdefault(s.output, {"max_abs": 0.0, "q999": 0.0, "mean_abs": 0.0, "noise_max_abs": 0.0})
                for k in ("max_abs", "q999", "mean_abs"):
                    w[k] = max(w[k], getattr(s, k))
                w["noise_max_abs"] = max(w["noise_max_abs"], s.noise_floor["max_abs"])
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
            "runtime": self.runtime,
            "sandbox": self.sandbox,
            "confined": self.confined,
            "judged_precision": self.precision or self.metadata.precision,
            "metadata": asdict(self.metadata),
            "metadata_inferred": bool(self.metadata.inferred),
            "tolerance": asdict(self.tolerance),
            "passed": self.passed,
            "worst": self.worst(),
            "failures": [f.to_dict() for f in self.failures],
            "drift": [asdict(d) | {"drifting": d.drifting} for d in self.drifts()],
            "localization": self.localization,
            "cases": [
                {
                    "case": asdict(r.case),
                    "runtime_jitter": r.jitter,
                    "stats": [s.to_dict() for s in r.stats],
                    "alpha": [asdict(a) for a in r.alpha],
                }
                for r in self.results
            ],
        }

    def write_json(self, path: str | Path) -> None:
        """Write the report atomically (all or nothing); raises OSError."""
        write_atomic(path, json.dumps(self.to_dict(), indent=1).encode())

    def junit_cases(self, suite: str = "") -> List[ET.Element]:
        """JUnit ``<testcase>`` elements: one per verified case (its failures, as the table words them), plus
        ``artifact checks`` for what is checked before any frame (a mislabelled precision, contract problems)."""
        classname = suite or self.artifact
        cases = [("artifact checks", self.artifact_failures)] + [(r.case.label, r.failures) for r in self.results]
        return [junit_case(classname, name, [f.message() for f in failures]) for name, failures in cases]

    def write_junit(self, path: str | Path) -> None:
        """Write this report as a JUnit XML file (one test suite) atomically; raises OSError."""
        write_junit(path, [(self.artifact, self.junit_cases())])

    def header(self) -> List[str]:
        m = self.metadata
        lines = [f"artifact  {self.artifact}  [{self.kind}, {m.variant}, {m.refiner}, {m.precision}]"]
        if m.inferred:
            how = "; ".join(f"{k} from {v}" for k, v in m.inferred.items())
            lines.append(f"metadata  NONE in the artifact (not written by rvm-export); inferred: {how}")
        lines.append(f"weights   {m.weights_label}")
        if self.runtime:
            lines.append(f"runtime   {self.runtime}")
        if not self.confined:  # first, so that no reader of the report misses it
            lines.insert(
                0, f"WARNING   the runtime ran unconfined: {self.sandbox} (docs/security.md; --require-sandbox refuses)"
            )
        elif self.sandbox:
            lines.append(f"sandbox   {self.sandbox}")
        return lines

    def table(self) -> str:
        lines = self.header() + [
            "",
            f"{'case':<26}{'output':<8}{'max|e|':>10}{'noise':>10}{'ratio':>7}{'q99.9|e|':>10}{'mean|e|':>10}"
            "   alpha MAD/MSE x1e3, dtSSD x1e2",
        ]
        for result in self.results:
            alpha = result.alpha
            for name in OUTPUT_NAMES:
                stats = [s for s in result.stats if s.output == name]
                if not stats:
                    continue
                row = (
                    f"{result.case.label:<26}{name:<8}{max(s.max_abs for s in stats):>10.2e}"
                    f"{max(s.noise_floor['max_abs'] for s in stats):>10.2e}"
                    f"{max(s.ratio['max_abs'] for s in stats):>7.1f}"
                    f"{max(s.q999 for s in stats):>10.2e}{max(s.mean_abs for s in stats):>10.2e}"
                )
                if name == "pha" and alpha:
                    dt = max((a.dtssd_1e2 or 0.0) for a in alpha)
                    row += f"   {max(a.mad_1e3 for a in alpha):.3f} / {max(a.mse_1e3 for a in alpha):.4f}, {dt:.3f}"
                lines.append(row)
        for result in self.results:
            moved = {name: s["max_abs"] for name, s in result.jitter.items() if s["max_abs"] > 0}
            if moved:
                worst = ", ".join(f"{name} {value:.2e}" for name, value in moved.items())
                lines.append(
                    f"  {result.case.label}: the runtime itself is not deterministic (frame 0 run twice differs by "
                    f"max |e| {worst}); counted in the noise floor"
                )
        long = [d for d in self.drifts() if len(d.block_max) >= 3 and d.output in ("pha", "fgr", "r1o", "r4o")]
        if long:
            lines += ["", f"error over time (worst max |e| per block of {BLOCK} frames):"]
            for d in long:
                blocks = " ".join(f"{v:.1e}" for v in d.block_max[:12]) + (" ..." if len(d.block_max) > 12 else "")
                flag = "  DRIFT" if d.drifting else ""
                lines.append(
                    f"  {d.case:<24}{d.output:<5} {blocks}  slope {d.slope_per_100:+.1e}/100 frames, "
                    f"growth {d.growth:.1f}x{flag}"
                )
        precision = self.precision or self.metadata.precision
        lines += [
            "",
            f"tolerance ({precision}): noise floor = {self._noise_source(precision)}; error {self.tolerance.describe()}",
        ]
        if self.passed:
            lines.append("PASS: every output of every frame is within tolerance")
        else:
            failures = self.failures
            lines.append(f"FAIL: {len(failures)} check(s) failed; first: {failures[0].message()}")
            lines += [f"  - {f.message()}" for f in failures[1:6]]
            drifting = [d for d in self.drifts() if d.drifting and any(f.output == d.output for f in failures)]
            lines += [f"  {d.message()}" for d in drifting[:3]]
        if self.localization:
            lines.append(self.localization)
        return "\n".join(lines)

    @staticmethod
    def _noise_source(precision: str) -> str:
        from .noise import NOISE_SOURCES

        return NOISE_SOURCES.get(precision, "?")


def junit_case(classname: str, name: str, failures: Sequence[str], skipped: Optional[str] = None) -> ET.Element:
    """One JUnit ``<testcase>``: failed with the first message as its ``message`` and all of them as its text;
    ``skipped``: not run, and why."""
    case = ET.Element("testcase", classname=classname, name=name)
    if skipped is not None:
        ET.SubElement(case, "skipped", message=skipped)
    elif failures:
        failure = ET.SubElement(case, "failure", message=failures[0], type="parity")
        failure.text = "\n".join(failures)
    return case


def write_junit(path: str | Path, suites: Sequence[Tuple[str, List[ET.Element]]], name: str = "rvm-verify") -> None:
    """A JUnit XML document of ``suites`` (name, testcases), written atomically; raises OSError."""
    root = ET.Element("testsuites", name=name)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite_name, cases in suites:
        counts = {
            "tests": len(cases),
            "failures": sum(c.find("failure") is not None for c in cases),
            "errors": 0,
            "skipped": sum(c.find("skipped") is not None for c in cases),
        }
        suite = ET.SubElement(root, "testsuite", name=suite_name, **{k: str(v) for k, v in counts.items()})
        suite.extend(cases)
        totals = {k: totals[k] + counts[k] for k in totals}
    root.attrib.update({k: str(v) for k, v in totals.items()})
    ET.indent(root)
    write_atomic(path, ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
