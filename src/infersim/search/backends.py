"""Where evaluations run: in this process, a local process pool, or a Ray cluster.

The unit of work is a :class:`Job`: a chunk of configurations plus the plain
data needed to rebuild the evaluator and score its outcomes, so a worker
returns a scored, columnar :class:`Batch` ready for the database. Backends yield results as jobs finish
(any order; the runner restores ask order for the optimizer).

A worker that dies (killed, segfault, out of memory) breaks only the work it
held: finished results are already returned, and the unfinished jobs are
retried point by point; a point that kills its worker again, run alone, is
recorded as failed with the reason.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from ..errors import InfersimError
import numpy as np

from .evaluators.base import Columns, EvaluatorContext, Outcome, as_columns, evaluator_for, failure
from .optimizers.base import Feedback
from .scoring import FAILED, Scoring
from .space import Config

Item = tuple[int, str, str, Config]  # (trial, key, canonical config JSON, config)
WORKER_DIED = "worker process died while evaluating this point (killed, crashed or out of memory)"


@dataclass(frozen=True)
class Job:
    context: EvaluatorContext
    scoring: Scoring
    items: tuple[Item, ...]


@dataclass
class Batch:
    """A job's results as columns, scored: ready for the database and for the optimizer."""

    trials: list[int]
    keys: list[str]
    configs: list[str]  # canonical JSON
    status: list[str]
    errors: list[str | None]
    metrics: dict[str, np.ndarray]  # NaN = not reported
    feasible: np.ndarray  # (n,) bool
    objectives: np.ndarray  # (n, objectives), NaN where unavailable
    violations: np.ndarray  # (n, constraints), <= 0 met
    evaluator: str
    elapsed_s: float  # per point

    def __len__(self) -> int:
        return len(self.keys)

    def feedback(self, i: int) -> Feedback:
        obj = self.objectives[i]
        values = None if np.isnan(obj).any() else tuple(float(v) for v in obj)
        return Feedback(self.status[i], bool(self.feasible[i]), values,
                        tuple(float(v) for v in self.violations[i]))

    def metrics_of(self, i: int) -> dict | None:
        out = {k: float(v[i]) for k, v in self.metrics.items() if math.isfinite(v[i])}
        return out or None


def merge(batches: list[Batch]) -> Batch:
    """One batch holding the rows of several (metric columns united, NaN where a batch lacks one)."""
    if len(batches) == 1:
        return batches[0]
    names: dict[str, None] = {}
    for b in batches:
        names.update(dict.fromkeys(b.metrics))
    metrics = {k: np.concatenate([b.metrics.get(k, np.full(len(b), np.nan)) for b in batches]) for k in names}
    total = sum(len(b) for b in batches)
    return Batch([t for b in batches for t in b.trials], [k for b in batches for k in b.keys],
                 [c for b in batches for c in b.configs], [s for b in batches for s in b.status],
                 [e for b in batches for e in b.errors], metrics, np.concatenate([b.feasible for b in batches]),
                 np.concatenate([b.objectives for b in batches]), np.concatenate([b.violations for b in batches]),
                 batches[0].evaluator, sum(b.elapsed_s * len(b) for b in batches) / max(total, 1))


def batch_for(job: Job, columns: Columns, elapsed_s: float) -> Batch:
    if len(columns) != len(job.items):
        raise RuntimeError(f"evaluator returned {len(columns)} outcomes for {len(job.items)} configurations")
    metrics = {k: np.asarray(v, dtype=np.float64) for k, v in columns.metrics.items()}
    feasible, objectives, violations = job.scoring.score_columns(columns.status, metrics)
    return Batch([i[0] for i in job.items], [i[1] for i in job.items], [i[2] for i in job.items],
                 list(columns.status), list(columns.error), metrics, feasible, objectives, violations,
                 job.context.kind, elapsed_s / max(len(job.items), 1))


def run_job(job: Job) -> Batch:
    """Evaluate one job (in a worker). A raising batch is retried point by point to isolate the failure."""
    start = time.perf_counter()
    configs = [item[3] for item in job.items]
    try:
        columns = as_columns(evaluator_for(job.context).evaluate(configs))
        if len(columns) != len(configs):
            raise RuntimeError(f"evaluator returned {len(columns)} outcomes for {len(configs)} configurations")
    except Exception:  # noqa: BLE001
        outcomes = []
        for config in configs:
            try:
                outcomes.extend(as_columns(evaluator_for(job.context).evaluate([config])).outcomes())
            except Exception as inner:  # noqa: BLE001
                outcomes.append(failure(inner))
        columns = Columns.from_outcomes(outcomes)
    return batch_for(job, columns, time.perf_counter() - start)


def failed_results(job: Job, error: str) -> Batch:
    return batch_for(job, Columns.from_outcomes([Outcome(FAILED, None, error) for _ in job.items]), 0.0)


def singles(job: Job) -> list[Job]:
    return [Job(job.context, job.scoring, (item,)) for item in job.items]


class Backend:
    name = "inline"
    workers = 1

    def map(self, jobs: list[Job]) -> Iterator[Batch]:
        for job in jobs:
            yield run_job(job)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


InlineBackend = Backend


def _mp_context():
    # forkserver: workers fork from a clean server process, not from this one (which holds the
    # database connection and its threads), with the evaluators already imported there;
    # spawn where forkserver is unavailable
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["infersim.search.backends", "infersim.search.evaluators"])
    return ctx


#: how often a pool worker checks that the process that started the search is still alive (s)
PARENT_POLL_S = 0.5


def _die_with(owner_pid: int) -> None:
    """Pool-worker initializer: end this worker when the search process ends, however it ends.

    On Linux the kernel sends SIGKILL when the worker's parent (the forkserver, which itself
    exits when the search process's pipe to it closes) dies (prctl PR_SET_PDEATHSIG). Everywhere,
    a daemon thread polls the search process and exits when it is gone, which also covers a
    SIGKILL of the search process on systems without prctl."""
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG (linux/prctl.h)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl: the thread below still runs
            pass

    def watch() -> None:
        while True:
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # pragma: no cover - pid reused by another user's process
                os._exit(1)
            time.sleep(PARENT_POLL_S)

    threading.Thread(target=watch, name="infersim-parent-watch", daemon=True).start()


class LocalBackend(Backend):
    """A process pool over this machine's cores.

    Workers start from a forkserver (spawn semantics): a script that runs a search must keep its
    top-level code under ``if __name__ == "__main__":``, as with any multiprocessing program.
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=_mp_context(),
                                             initializer=_die_with, initargs=(os.getpid(),))
        return self._pool

    def _reset(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _kill(self) -> None:
        """Stop the pool now (interrupted: Ctrl-C, SIGTERM): its workers are terminated, not drained."""
        if self._pool is not None:
            processes = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for proc in processes:
                if proc.is_alive():
                    proc.terminate()
            for proc in processes:
                proc.join(timeout=5)
            self._pool = None

    def map(self, jobs: list[Job]) -> Iterator[Batch]:
        broken = yield from self._run(jobs)
        if not broken:
            return
        # the pool broke: retry the unfinished jobs point by point; a point that breaks a pool
        # again is run alone, and if it kills its worker alone it is recorded as failed
        self._reset()
        retries = [s for job in broken for s in singles(job)]
        suspects = yield from self._run(retries)
        # a suspect is run alone: one that kills its worker alone is recorded as failed. A single killing
        # point can take every other retry down with the pool, so "all retries lost" proves nothing;
        # workers that die whatever they run do (the first two suspects each dying alone)
        died_alone = 0
        for i, job in enumerate(suspects):
            self._reset()
            again = yield from self._run([job])
            if again:
                died_alone += 1
                if died_alone == 2 and i == 1:
                    self._reset()
                    raise InfersimError(
                        "worker processes die before finishing any evaluation (a script that runs a search must "
                        "guard it with `if __name__ == '__main__':`; otherwise check memory limits)")
                yield failed_results(job, WORKER_DIED)
        self._reset()

    def _run(self, jobs: list[Job]):
        """Run jobs on the pool, yielding results; returns the jobs lost to a broken pool."""
        if not jobs:
            return []
        pool = self._executor()
        lost: list[Job] = []
        try:
            futures = {pool.submit(run_job, job): job for job in jobs}
        except BrokenProcessPool:
            return list(jobs)
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        results = fut.result()
                    except BrokenProcessPool:
                        lost.append(futures[fut])
                        continue
                    yield results
        except BaseException:
            for fut in pending:
                fut.cancel()
            self._kill()
            raise
        return lost

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayBackend(Backend):
    """Tasks on a Ray cluster: ``address`` of a running cluster, or None for a local Ray instance."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise InfersimError("--backend ray needs Ray: pip install 'infersim[ray]'") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            # a new local instance shares this machine: give its workers this interpreter's import path
            local = {} if address else {"runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(
                p for p in sys.path if p and os.path.isdir(p))}}}
            try:
                # "local": always a new instance, never a cluster another `ray start` left on this machine
                ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                         configure_logging=False, **local)
            except Exception as exc:  # noqa: BLE001 - connection problems are user-facing
                raise InfersimError(f"cannot connect to Ray at {address or '(new local instance)'}: {exc}") from None
            self._started = True
        self.workers = workers or int(ray.cluster_resources().get("CPU", 1))
        self._remote = ray.remote(max_retries=0)(run_job)

    def map(self, jobs: list[Job]) -> Iterator[Batch]:
        # a crashed Ray worker takes only its own task down: retry that job point by point
        crashed = yield from self._run(jobs)
        for job in crashed:
            if len(job.items) == 1:
                yield failed_results(job, WORKER_DIED)
                continue
            for lone in (yield from self._run(singles(job))):
                yield failed_results(lone, WORKER_DIED)

    def _run(self, jobs: list[Job]):
        ray = self._ray
        refs = {self._remote.remote(job): job for job in jobs}
        lost: list[Job] = []
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        yield ray.get(ref)
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                            ray.exceptions.OutOfMemoryError):
                        lost.append(refs[ref])
                    except ray.exceptions.RayTaskError as exc:
                        yield failed_results(refs[ref], f"ray task failed: {exc}")
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return lost

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_backend(name: str, *, workers: int | None = None, address: str | None = None) -> Backend:
    if name == "local":
        if workers == 1:
            return InlineBackend()
        return LocalBackend(workers)
    if name == "inline":
        return InlineBackend()
    if name == "ray":
        return RayBackend(address, workers)
    raise InfersimError(f"unknown backend '{name}'; expected local or ray")
