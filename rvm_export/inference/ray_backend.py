"""``convert_videos(..., ray=...)``: the jobs (whole inputs or chunks) on Ray actors.

One actor per worker slot (``worker_cpus`` CPUs each; one GPU each when the model runs on CUDA) loads the
model once and runs one job at a time, each with a fresh recurrent state, through the same ``run_job``
(:mod:`rvm_export.inference.jobs`) as a run in this process, so its outputs are the same bytes. The driver hands
a job to each idle actor and collects the results; progress comes from a small actor the workers report their
frame counts to.

Nothing is lost silently: an actor whose process dies is restarted by Ray (``max_restarts``) and its job rerun
(``max_task_retries``), and when that is used up the job comes back as :class:`ray.exceptions.RayActorError`,
reported as the input's failure, and a fresh actor takes the dead one's place for the remaining jobs.
"""

import os
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from rvm_export.contract.errors import USER_ERRORS, InferenceError, MissingExtraError, first_line
from rvm_export.inference.engine import Settings
from rvm_export.inference.jobs import Job, JobResult, ModelSource, run_job

REPORT_SECONDS = 0.5  # how often a worker reports its progress, and the driver looks


def _ray() -> Any:
    from rvm_export import extras

    try:
        import ray
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        raise MissingExtraError(extras.message("rvm-convert", "--ray", "ray", "ray")) from exc
    return ray


def connect(address: str) -> Any:
    """``ray.init`` for ``'auto'`` (RAY_ADDRESS, else a running local cluster, else a new local one) or an
    address; an already connected session (a test's cluster) is used as it is."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    try:
        if address == "auto":
            try:
                ray.init(address="auto", log_to_driver=False)  # RAY_ADDRESS, or a cluster `ray start` began here
            except ConnectionError:
                ray.init(include_dashboard=False, log_to_driver=False)  # a local cluster for this run
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise InferenceError(f"cannot join the Ray cluster at {address} ({first_line(exc)}); check --ray", "ray")
    return ray


class Worker:
    """A Ray actor: the model loaded once, then jobs one at a time."""

    def __init__(self, source: ModelSource, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.source = source
        self.error: Optional[str] = None
        try:
            self.model, self.release = source.load()
        except USER_ERRORS as exc:  # reported by ready(), not as an actor that cannot start
            self.model, self.release, self.error = None, lambda: None, str(exc)

    def ready(self) -> Tuple[Optional[str], int]:
        """(the model's load error or None, this worker's process id)."""
        return self.error, os.getpid()

    def run(self, job: Job, settings: Settings, progress: Any) -> JobResult:
        if self.error is not None:
            return JobResult(error=self.error)
        done, last = [0], [time.monotonic()]

        def report(frames: int) -> None:
            done[0] += frames
            if time.monotonic() - last[0] >= REPORT_SECONDS:
                last[0] = time.monotonic()
                progress.report.remote(job.key, done[0])

        return run_job(self.model, job, settings, self.source.run_device(), self.source.torch_dtype(), report)


class Progress:
    """A Ray actor: the frames each job has put through the model (a rerun job starts again from 0)."""

    def __init__(self) -> None:
        self.frames: Dict[str, int] = {}

    def report(self, key: str, frames: int) -> None:
        self.frames[key] = max(self.frames.get(key, 0), frames)

    def snapshot(self) -> Dict[str, int]:
        return dict(self.frames)


class RayExecutor:
    """The library's jobs on Ray actors (an :class:`~rvm_export.inference.jobs.Executor`); ``max_retries`` restarts of a dead worker (and reruns of its job)."""

    def __init__(self, address: str, source: ModelSource, worker_cpus: float = 1, max_retries: int = 2) -> None:
        if not worker_cpus > 0:
            raise InferenceError(f"worker_cpus must be positive, got {worker_cpus}", "worker_cpus")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise InferenceError(f"max_retries must be an integer >= 0, got {max_retries}", "max_retries")
        self.ray = connect(address)
        self.source = source
        self.cpus = worker_cpus
        self.retries = max_retries
        self.gpus = 1 if (source.device or "").startswith("cuda") else 0
        self.handle: Any = None
        self.progress: Any = None
        self.actors: List[Any] = []

    def _start(self, count: int) -> None:
        """``count`` workers (none while every input is already complete); a model that cannot load raises."""
        if not self.actors:
            self.handle = self.ray.put(self.source)  # an object model goes to the object store once
            self.progress = self.ray.remote(num_cpus=0)(Progress).remote()
            self.actors.append(self._actor())
            error, _ = self.ray.get(self.actors[0].ready.remote())
            if error is not None:
                raise InferenceError(error)
        while len(self.actors) < count:
            self.actors.append(self._actor())

    def _actor(self) -> Any:
        remote = self.ray.remote(Worker).options(
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            max_restarts=self.retries,
            max_task_retries=self.retries,
        )
        return remote.remote(self.handle, int(self.cpus))

    def slots(self) -> int:
        """Workers the cluster has room for."""
        cpus = float(self.ray.cluster_resources().get("CPU", 1))
        return max(1, int(cpus // self.cpus))

    def run(self, jobs: List[Job], settings: Settings, done: Callable[[Job, JobResult], None], bar: Any) -> None:
        ray = self.ray
        if not jobs:
            return
        self._start(min(self.slots(), len(jobs)))
        queue: Deque[Job] = deque(jobs)
        idle = list(self.actors)
        pending: Dict[Any, Tuple[Any, Job]] = {}
        finished: Dict[str, int] = {}
        while queue or pending:
            while queue and idle:
                actor, job = idle.pop(), queue.popleft()
                pending[actor.run.remote(job, settings, self.progress)] = (actor, job)
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=REPORT_SECONDS)
            for ref in ready:
                actor, job = pending.pop(ref)
                outcome, actor = self._outcome(ref, actor)
                idle.append(actor)
                finished[job.key] = job.frames
                done(job, outcome)
            seen = ray.get(self.progress.snapshot.remote())
            count = sum(max(seen.get(key, 0), finished.get(key, 0)) for key in set(seen) | set(finished))
            bar.update(max(0, count - bar.n))

    def _outcome(self, ref: Any, actor: Any) -> Tuple[JobResult, Any]:
        """The job's result and the actor to use next (a fresh one where this one is gone for good)."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref), actor
        except exceptions.RayActorError as exc:
            tries = self.retries + 1
            message = f"the Ray worker converting it died ({tries} tries; {first_line(exc)})"
            self.actors.remove(actor)
            self.actors.append(self._actor())
            return JobResult(error=message), self.actors[-1]
        except exceptions.RayError as exc:
            return JobResult(error=f"Ray failed to run it ({first_line(exc)})"), actor

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.progress is not None:
            self.ray.kill(self.progress)
        self.actors, self.progress = [], None


__all__ = ["RayExecutor", "connect"]
