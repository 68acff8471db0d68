"""Fuzzing the artifact readers: corrupted copies of good artifacts, each run through ``rvm-verify``.

Every outcome must be clean: exit 2 with one ``rvm-verify: error: ...`` line (the file is refused), exit 1
(it loaded but failed to run or failed parity), or exit 0 when the mutation did not touch what the check
depends on ("passed unchanged"). Anything else is a finding: a Python exception escaping the command (a
traceback), the process dying by a signal (a crash: a C++ abort, a segfault), no answer within the
per-input timeout (a hang), a huge allocation (MemoryError, std::bad_alloc or a runtime's own "failed to
allocate" under the worker's address-space limit, or the worker's peak memory jumping by gigabytes), or
stderr that is more than the one error line.

Mutations are deterministic (``--seed``): truncations, byte changes in headers and anywhere, and
format-aware forgeries: zip members, their CRCs and the sizes and counts of the zip records (TorchScript,
torch.export); protobuf fields re-encoded along a random path with forged varints, lengths and repeated
counts (ONNX, saved_model.pb, CoreML); flatbuffer vector lengths, indices and shapes (LiteRT, MNN, ExecuTorch); JSON
documents with huge shapes and sizes, wrong types, missing keys and deep nesting (TF.js model.json, the
.mlpackage Manifest.json, the program of a .pt2, the rvm metadata every artifact embeds); OpenVINO XML
attributes; the CoreML weight blob's header and blob records; ncnn's .param text.

The mutators and each format's table (which files of the artifact, which mutations in which order) are in one
module per encoding beside this one: ``zip_mutations.py``, ``protobuf_mutations.py``, ``flatbuffer_mutations.py``,
``json_mutations.py``, ``xml_mutations.py``, ``text_mutations.py`` (each a ``FORMATS`` tuple); the generic byte
mutations and :class:`~tests.fuzz.mutations.Format` are in ``mutations.py``. This module is the driver: the plan,
the worker, the outcomes and the command line. It is test code, not part of the installed package: run it from the
repository root.

Inputs run in a worker subprocess that serves many of them (torch and TensorFlow start in seconds, not
per input), under ``RLIMIT_AS`` (its mapped size when the input starts plus ``--memory``); a child it
starts (the TF.js runner's Node.js) gets its own limit. A worker that hangs is killed with its process group
and restarted, as is one that dies.

    python -m tests.fuzz --per-format 200            # exports seeded artifacts, then fuzzes
    python -m tests.fuzz --formats onnx,tflite --per-format 50 --keep findings/
    python -m tests.fuzz --only tflite:17              # reproduce one input

Exit status: 0 when every outcome is clean, 1 when there are findings, 2 on bad arguments.
"""

import argparse
import importlib
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tests.fuzz.mutations import Ctx, Format, Skip

GB = 1 << 30
DEFAULT_MEMORY = 4 * GB  # address space a worker may map on top of what it had when an input started
CHILD_MEMORY = 16 * GB  # a child's limit (Node.js reserves ~11.6 GB of address space for WebAssembly)
DEFAULT_TIMEOUT = 180.0  # seconds per input (a good .pt2 takes ~25 s on a loaded 2-core machine)
STARTUP_TIMEOUT = 120.0
RSS_JUMP = 3 * GB  # the worker's peak RSS rising by this much within one input is a huge allocation

CLEAN = ("exit 1", "exit 2", "passed unchanged")
FINDINGS = ("traceback", "crash", "hang", "huge allocation", "multi-line stderr", "bad exit code")

# Lines a runtime's own logger writes to stderr (also for good artifacts): not the command's output.
RUNTIME_LOG = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+\s+\S+:\d+\]"  # absl / glog (TensorFlow, LiteRT)
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \[[VIWEF]:onnxruntime:"  # ONNX Runtime's logger
    r"|(?:WARNING:coremltools:)?Failed to load _ML\w+: No module named 'coremltools\.libcoremlpython'"  # at import
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    r"|Failed to load \S+/torchao/\S+\.so: Could not load this library: \S+"  # executorch's import of torchao
    r"|\[\w+\.(?:cpp|h):\d+\] "  # ExecuTorch's own log lines (ET_LOG): its CPU probe, a program it refuses
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|(?:WARNING:coremltools:)?(?:TensorFlow|Torch|scikit-learn) version \S+ has not been tested with coremltools\."
    # coremltools at import, where another extra (executorch) brought a scikit-learn newer than it supports
    r"|(?:WARNING:coremltools:)?scikit-learn version \S+ is not supported\. .*Disabling scikit-learn conversion API\."
    r")"
)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # ONNX Runtime colours its log lines
MEMORY_TEXT = re.compile(
    r"MemoryError|bad_alloc|[Cc]annot allocate memory|[Oo]ut of memory|[Ff]ailed to allocate|"
    r"OOM when allocating|ResourceExhausted|Array buffer allocation failed|[Aa]llocation failed|"
    r"std::length_error|[Uu]nable to allocate"
)

REPO = Path(__file__).resolve().parents[2]
ENCODINGS = ("zip", "protobuf", "json", "xml", "flatbuffer", "text")  # the modules <encoding>_mutations.py


def formats() -> Dict[str, Format]:
    """Every reader the fuzz covers: one per target, CoreML's two formats apart; the tables of each encoding's
    module, in the registry's order of targets."""
    from rvm_export.targets import TARGETS

    table = [f for e in ENCODINGS for f in importlib.import_module(f"tests.fuzz.{e}_mutations").FORMATS]
    order = list(TARGETS)
    return {f.name: f for f in sorted(table, key=lambda f: order.index(f.target))}


@dataclass(frozen=True)
class Mutation:
    format: str
    index: int
    kind: str

    @property
    def id(self) -> str:
        return f"{self.format}:{self.index}"


def mutation(fmt: Format, index: int) -> Mutation:
    """Input ``index`` of ``fmt``: its kind cycles through the format's list, its random stream is its own."""
    return Mutation(fmt.name, index, fmt.kinds[index % len(fmt.kinds)][0])


def plan(fmt: Format, count: int, start: int = 0) -> List[Mutation]:
    """``count`` mutations of ``fmt`` from index ``start``."""
    return [mutation(fmt, i) for i in range(start, start + count)]


def apply_mutation(fmt: Format, mutation: Mutation, good: Path, folder: Path, seed: int) -> Tuple[Path, str]:
    """A mutated copy of ``good`` in ``folder`` (its companions copied too) and what was done to it.
    The mutation is tried with successive random streams until one applies (see :class:`Skip`)."""
    mutator = fmt.kinds[mutation.index % len(fmt.kinds)][1]
    for attempt in range(20):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        copy = folder / good.name
        if good.is_dir():
            shutil.copytree(good, copy)
        else:
            shutil.copy(good, copy)
            if good.with_suffix(".bin").is_file() and good.suffix in (".xml", ".param"):
                shutil.copy(good.with_suffix(".bin"), copy.with_suffix(".bin"))
        rng = random.Random(f"{seed}:{mutation.format}:{mutation.index}:{attempt}")
        try:
            return copy, f"{mutation.kind}: {mutator(Ctx(rng, copy))}"
        except Skip:
            continue
    raise RuntimeError(f"mutation {mutation.id} ({mutation.kind}) never applied to {good}")


# --- The worker: many inputs per process -------------------------------------------------------------------


def _mapped_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _limit_children() -> None:
    """Children get their own address-space limit, not the worker's: the TF.js runner's Node.js
    :data:`CHILD_MEMORY` (it reserves ~11.6 GB for WebAssembly), Playwright's driver and the Chromium it starts
    none (Chromium reserves terabytes of address space up front; a renderer out of memory ends its page)."""
    base = subprocess.Popen

    def limit_to(limit: int) -> Callable[[], None]:
        def apply() -> None:
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            resource.setrlimit(
                resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard)
            )

        return apply

    class LimitedPopen(base):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            if kwargs.get("preexec_fn") is None:
                words = [str(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)]
                browser = any("playwright" in w or "chrom" in w.lower() for w in words)
                kwargs["preexec_fn"] = limit_to(resource.RLIM_INFINITY if browser else CHILD_MEMORY)
            super().__init__(args, *rest, **kwargs)

    subprocess.Popen = LimitedPopen  # type: ignore[misc]


def _run_one(main: Callable, request: dict) -> dict:
    """One ``rvm-verify`` run with stdout and stderr (Python's and native code's) sent to files."""
    import gc

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    peak_before = _peak_rss()
    caught: Optional[BaseException] = None
    code: Any = None
    started = time.monotonic()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (_mapped_bytes() + int(request["memory"]), hard))
        try:
            main(request["args"], standalone_mode=False)
            code = 0
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:  # what escaped the command: a traceback for its user
            caught = exc
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
    result: Dict[str, Any] = {
        "id": request["id"],
        "seconds": round(time.monotonic() - started, 2),
        "peak_jump": max(0, _peak_rss() - peak_before),
    }
    if caught is not None:
        result.update(
            status="exception",
            type=type(caught).__name__,
            message=str(caught)[:2000],
            traceback="".join(traceback.format_exception(type(caught), caught, caught.__traceback__))[-6000:],
        )
    else:
        if code is None:
            code = 0
        result.update(status="exit", code=code if isinstance(code, int) else 1, raw_code=repr(code)[:200])
    del caught
    gc.collect()
    return result


def serve(reply_fd: int) -> None:
    """The worker loop: requests as JSON lines on stdin, one JSON reply line each on ``reply_fd``."""
    reply = os.fdopen(reply_fd, "w", buffering=1)
    _limit_children()
    from rvm_export.verify.cli import main

    reply.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        reply.write(json.dumps(_run_one(main, json.loads(line))) + "\n")


class Worker:
    """A ``serve`` subprocess in its own process group, restarted by its owner when it dies or hangs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = (folder / "worker.log").open("ab")
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz", "--worker", str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=self.log,
            pass_fds=(write_fd,),
            start_new_session=True,
            cwd=folder,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
        )
        os.close(write_fd)
        self.reply = read_fd
        self.buffer = b""
        self.requests = 0
        ready = self._line(STARTUP_TIMEOUT)
        if not ready or not ready.get("ready"):
            code = self.kill()
            raise RuntimeError(f"the fuzz worker did not start (exit {code}); see {folder / 'worker.log'}")

    def _line(self, timeout: float) -> Optional[dict]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"status": "timeout"}
            ready, _, _ = select.select([self.reply], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.reply, 65536)
            if not chunk:
                return None  # the worker is gone
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, request: dict, timeout: float) -> dict:
        self.requests += 1
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"status": "crash", "returncode": self.kill()}
        reply = self._line(timeout)
        if reply is None:
            return {"status": "crash", "returncode": self.kill()}
        if reply.get("status") == "timeout":
            self.kill()
            return {"status": "hang", "seconds": timeout}
        return reply

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> Optional[int]:
        """End the worker and whatever it started (its process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        os.close(self.reply)
        self.reply = -1
        self.log.close()
        return code

    def close(self) -> None:
        if self.reply < 0:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


# --- Outcomes -----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    mutation: Mutation
    description: str
    outcome: str  # one of CLEAN or FINDINGS
    detail: str  # the error line, the exception, the signal...
    seconds: float
    stderr: List[str] = field(default_factory=list)  # stderr lines besides the runtime's own logging
    log_lines: int = 0  # lines of the runtime's own logger (absl, ONNX Runtime...), as good artifacts print too
    kept: Optional[str] = None  # where the mutated artifact was kept (findings, with --keep)

    @property
    def finding(self) -> bool:
        return self.outcome in FINDINGS


def _signal_name(code: Optional[int]) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def classify(reply: dict, stdout: str, stderr: str) -> Tuple[str, str, List[str]]:
    """(outcome, detail, extra stderr lines) of one reply and what the run printed."""
    lines = [line for line in ANSI.sub("", stderr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("rvm-verify: error:")]
    extra = [line for line in lines if not line.startswith("rvm-verify: error:") and not RUNTIME_LOG.match(line)]
    status = reply.get("status")
    if status == "hang":
        return "hang", f"no answer within {reply['seconds']:.0f} s", extra[-5:]
    if status == "crash":
        tail = [line for line in lines if not RUNTIME_LOG.match(line) or line[:1] == "F"][-3:]
        return (
            "crash",
            f"the process died ({_signal_name(reply.get('returncode'))}): {' | '.join(tail)[:600]}",
            extra[-5:],
        )
    if status == "exception":
        text = f"{reply['type']}: {reply['message'].splitlines()[0][:300] if reply['message'] else ''}"
        last = [ln for ln in reply["traceback"].splitlines() if ln.startswith('  File "')][-1:]
        where = last[0].strip() if last else ""
        kind = "huge allocation" if reply["type"] == "MemoryError" else "traceback"
        return kind, f"{text} ({where})", extra[-5:]
    code = reply.get("code")
    said = (
        " ".join(errors)
        + " "
        + " ".join(extra)
        + " "
        + "\n".join(ln for ln in stdout.splitlines() if "failed to run" in ln)
    )
    if MEMORY_TEXT.search(said) or reply.get("peak_jump", 0) > RSS_JUMP:
        jump = reply.get("peak_jump", 0) / GB
        return (
            "huge allocation",
            f"exit {code}, peak memory +{jump:.1f} GB: {(errors or extra or [said.strip()])[0][:300]}",
            extra[-5:],
        )
    if code == 2:
        if len(errors) == 1 and not extra:
            return "exit 2", errors[0], []
        return (
            "multi-line stderr",
            f"exit 2 with {len(errors)} error line(s) and {len(extra)} other line(s)",
            extra[-5:],
        )
    if code in (0, 1):
        if errors or extra:
            return (
                "multi-line stderr",
                f"exit {code} with {len(errors) + len(extra)} stderr line(s)",
                (errors + extra)[-5:],
            )
        if code == 0:
            return "passed unchanged", "verification passed", []
        verdict = next((ln.strip() for ln in stdout.splitlines() if ln.startswith("FAIL") or "failed to run" in ln), "")
        return "exit 1", verdict[:300], []
    return "bad exit code", f"exit {reply.get('raw_code', code)}", extra[-5:]


@dataclass
class Tally:
    tried: int = 0
    counts: Dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    logged: int = 0  # clean outcomes whose stderr also held lines of the runtime's own logger

    def add(self, outcome: Outcome) -> None:
        self.tried += 1
        self.logged += bool(outcome.log_lines) and not outcome.finding
        self.counts[outcome.outcome] = self.counts.get(outcome.outcome, 0) + 1
        self.seconds += outcome.seconds

    @property
    def findings(self) -> int:
        return sum(n for k, n in self.counts.items() if k in FINDINGS)

    def line(self, name: str) -> str:
        found = ", ".join(f"{self.counts[k]} {k}" for k in FINDINGS if self.counts.get(k))
        return (
            f"{name:<22}{self.tried:>5} tried{self.counts.get('exit 1', 0):>5} exit 1{self.counts.get('exit 2', 0):>5} exit 2"
            f"{self.counts.get('passed unchanged', 0):>5} passed unchanged{self.findings:>5} findings"
            f"{(' (' + found + ')') if found else ''}  [{self.seconds:.0f} s]"
            + (f"  ({self.logged} with runtime log lines)" if self.logged else "")
        )


@dataclass
class FuzzResult:
    outcomes: List[Outcome] = field(default_factory=list)
    tallies: Dict[str, Tally] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def findings(self) -> List[Outcome]:
        return [o for o in self.outcomes if o.finding]

    def summary(self) -> str:
        lines = ["format" + " " * 16 + "per-format outcomes of corrupted artifacts through rvm-verify"]
        lines += [tally.line(name) for name, tally in self.tallies.items()]
        total = Tally()
        for tally in self.tallies.values():
            total.tried += tally.tried
            total.seconds += tally.seconds
            total.logged += tally.logged
            for k, n in tally.counts.items():
                total.counts[k] = total.counts.get(k, 0) + n
        lines.append(total.line("total"))
        lines.append(f"wall time {self.seconds:.0f} s")
        for o in self.findings:
            lines.append(f"FINDING {o.mutation.id} [{o.outcome}] {o.description}")
            lines.append(f"    -> {o.detail}")
            lines += [f"    stderr: {line[:300]}" for line in o.stderr]
            if o.kept:
                lines.append(f"    kept: {o.kept}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "seconds": self.seconds,
            "tallies": {
                k: {"tried": t.tried, **t.counts, "runtime log": t.logged, "seconds": round(t.seconds, 1)}
                for k, t in self.tallies.items()
            },
            "outcomes": [
                {
                    "id": o.mutation.id,
                    "kind": o.mutation.kind,
                    "description": o.description,
                    "outcome": o.outcome,
                    "detail": o.detail,
                    "seconds": o.seconds,
                    "stderr": o.stderr,
                    "runtime_log_lines": o.log_lines,
                    "kept": o.kept,
                }
                for o in self.outcomes
            ],
        }


def fuzz(
    goods: Dict[str, Path],
    per_format: int,
    folder: Path,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    memory: int = DEFAULT_MEMORY,
    keep: Optional[Path] = None,
    only: Sequence[Mutation] = (),
    start: int = 0,
    log: Callable[[str], None] = lambda line: None,
) -> FuzzResult:
    """Mutate each good artifact ``per_format`` times (format name -> artifact path) and run every mutated
    copy through rvm-verify in a worker; ``only``: exactly these mutations instead."""
    table = formats()
    unknown = sorted(set(goods) - set(table))
    if unknown:
        raise ValueError(f"unknown formats {unknown}; choose from {', '.join(table)}")
    work = folder / "inputs"
    work.mkdir(parents=True, exist_ok=True)
    jobs = list(only) or [m for name in goods for m in plan(table[name], per_format, start)]
    result = FuzzResult(tallies={name: Tally() for name in dict.fromkeys(m.format for m in jobs)})
    began = time.monotonic()
    worker: Optional[Worker] = None
    try:
        for n, mutation in enumerate(jobs):
            fmt = table[mutation.format]
            slot = work / mutation.format / str(mutation.index)
            artifact, description = apply_mutation(fmt, mutation, goods[mutation.format], slot, seed)
            if worker is None or not worker.alive():
                worker = Worker(folder)
            request = {
                "id": n,
                "args": [str(artifact), *fmt.case],
                "stdout": str(slot / "stdout.txt"),
                "stderr": str(slot / "stderr.txt"),
                "memory": memory,
            }
            started = time.monotonic()
            reply = worker.run(request, timeout)
            if reply.get("status") in ("crash", "hang"):
                worker = None  # killed: the next input starts a fresh one
            stdout = _read(slot / "stdout.txt")
            stderr = _read(slot / "stderr.txt")
            outcome, detail, extra = classify(reply, stdout, stderr)
            record = Outcome(mutation, description, outcome, detail, round(time.monotonic() - started, 2), extra)
            record.log_lines = sum(1 for line in ANSI.sub("", stderr).splitlines() if RUNTIME_LOG.match(line))
            if record.finding and keep is not None:
                target = keep / mutation.format / str(mutation.index)
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(slot, target)
                record.kept = str(target)
            shutil.rmtree(slot, ignore_errors=True)
            result.outcomes.append(record)
            result.tallies[mutation.format].add(record)
            log(f"{mutation.id:<26} {outcome:<18} {record.seconds:6.1f} s  {description[:110]}")
            if record.finding:
                log(f"{'':<26} -> {detail[:400]}")
    finally:
        if worker is not None:
            worker.close()
        result.seconds = time.monotonic() - began
    return result


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# --- Good artifacts and the command line ---------------------------------------------------------------------


def export_goods(
    folder: Path, names: Sequence[str], seed: int = 0, log: Callable[[str], None] = print
) -> Dict[str, Path]:
    """Seeded random artifacts (``rvm-export TARGET --seed SEED``) of each format, exported once into ``folder``."""
    table = formats()
    goods: Dict[str, Path] = {}
    made: Dict[Tuple, Path] = {}  # (target, options) -> the artifact: tfjs-browser reads the tfjs one
    for name in names:
        fmt = table[name]
        key = (fmt.target, fmt.artifact, fmt.export_args)
        if key in made:
            goods[name] = made[key]
            continue
        out = folder / name / fmt.artifact
        if not out.exists():
            started = time.monotonic()
            command = [sys.executable, "-c", "from rvm_export.export.cli import main; main()"]
            command += [fmt.target, "--seed", str(seed), *fmt.export_args, "--output", str(out)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"rvm-export {fmt.target} failed: {done.stderr.strip()[-2000:]}")
            log(f"exported {name} in {time.monotonic() - started:.0f} s: {out}")
        goods[name] = made[key] = out
    return goods


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--per-format", type=int, default=30, help="mutated inputs per format (default 30)")
    parser.add_argument("--formats", default=",".join(formats()), help="comma-separated formats (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="mutation seed (the artifacts are exported with seed 0)")
    parser.add_argument("--start", type=int, default=0, help="first mutation index (continue an earlier run)")
    parser.add_argument(
        "--only", action="append", default=[], metavar="FORMAT:INDEX", help="run just this input; repeatable"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per input before it is a hang")
    parser.add_argument("--memory-gb", type=float, default=DEFAULT_MEMORY / GB, help="address space per input (GB)")
    parser.add_argument(
        "--artifacts", type=Path, default=None, help="folder for the good artifacts (kept; default: temporary)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="copy the inputs of findings here")
    parser.add_argument("--json", type=Path, default=None, help="write every outcome here")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        serve(args.worker)
        return 0
    table = formats()
    names = [n.strip() for n in args.formats.split(",") if n.strip()]
    only = []
    for item in args.only:
        name, _, index = item.partition(":")
        if name not in table or not index.isdigit():
            parser.error(f"--only {item!r}: expected FORMAT:INDEX with FORMAT one of {', '.join(table)}")
        only.append(mutation(table[name], int(index)))
    if only:
        names = list(dict.fromkeys(m.format for m in only))
    bad = [n for n in names if n not in table]
    if bad or args.per_format < 1:
        parser.error(f"unknown formats {bad}; choose from {', '.join(table)}" if bad else "--per-format must be >= 1")
    with tempfile.TemporaryDirectory(prefix="rvm-fuzz-") as scratch:
        artifacts = args.artifacts or Path(scratch) / "good"
        goods = export_goods(artifacts, names, 0)
        result = fuzz(
            goods,
            args.per_format,
            Path(scratch),
            args.seed,
            args.timeout,
            int(args.memory_gb * GB),
            args.keep,
            only,
            args.start,
            log=lambda line: print(line, flush=True),
        )
    print(result.summary())
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=1))
    return 1 if result.findings else 0
