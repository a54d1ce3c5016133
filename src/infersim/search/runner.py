"""The search loop: ask a batch, skip what is stored, evaluate the rest, store, tell in ask order.

Determinism: the optimizer is seeded, batches have a fixed size for adaptive
optimizers (``Study.batch_size``, independent of the worker count) and feedback
is told in ask order once the whole batch is in, so a seed gives the same
configurations and results on any backend with any number of workers.

Durability: results are committed in small transactions as they arrive (every 8192 rows,
every second, and at the end of each batch), so a killed run loses at most about a
second of evaluations; Ctrl-C commits what was evaluated before stopping.

Resumption: every point's key is looked up in the database first; a stored
point is not evaluated again (its stored outcome is told to the optimizer), and
the budget counts trials, stored or new, so re-running a finished study
evaluates nothing and a re-run after a kill picks up where it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .backends import Backend, Batch, InlineBackend, Job, merge
from .evaluators.base import evaluator_class
from .optimizers import Feedback, make_optimizer
from .scoring import FAILED, REJECTED
from .space import canonical_json, point_key
from .store import ResultStore
from .study import Study


@dataclass
class Progress:
    total: int  # trial budget
    asked: int = 0
    evaluated: int = 0  # new evaluations this run
    cached: int = 0  # trials answered from the database
    feasible: int = 0  # feasible among the trials of this run (new or stored)
    rejected: int = 0
    failed: int = 0
    best: dict[str, float] = field(default_factory=dict)  # best feasible value per objective
    elapsed_s: float = 0.0

    @property
    def done(self) -> int:
        return self.evaluated + self.cached

    @property
    def evaluations_per_s(self) -> float:
        return self.evaluated / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Known:
    """Outcomes by key: each a (batch, row) reference, turned into feedback only when told."""

    def __init__(self) -> None:
        self.where: dict[str, tuple[Batch, int]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.where

    def add(self, batch: Batch) -> None:
        for i, key in enumerate(batch.keys):
            self.where[key] = (batch, i)

    def feedback(self, key: str) -> Feedback:
        batch, i = self.where[key]
        return batch.feedback(i)

    def count(self, progress: Progress, study: Study, keys: list[str]) -> None:
        """Count trials answered by stored (or earlier) outcomes."""
        by_batch: dict[int, tuple[Batch, list[int]]] = {}
        for key in keys:
            batch, i = self.where[key]
            by_batch.setdefault(id(batch), (batch, []))[1].append(i)
        for batch, rows in by_batch.values():
            _count(progress, study, batch, np.asarray(rows, dtype=np.int64))


class _Writer:
    """Commits results in small transactions: every ``max_rows`` rows or ``max_wait_s`` seconds,
    and at the end of every ask batch. A hard kill loses at most the uncommitted tail."""

    def __init__(self, store: ResultStore, study: str, max_rows: int = 8192, max_wait_s: float = 1.0) -> None:
        self.store, self.study = store, study
        self.max_rows, self.max_wait_s = max_rows, max_wait_s
        self.pending: list[Batch] = []
        self.rows = 0
        self.since = time.monotonic()

    def add(self, batch: Batch) -> None:
        self.pending.append(batch)
        self.rows += len(batch)
        if self.rows >= self.max_rows or time.monotonic() - self.since >= self.max_wait_s:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.store.insert(self.study, merge(self.pending))
            self.pending, self.rows = [], 0
        self.since = time.monotonic()


def _stored(study: Study, store: ResultStore) -> Batch:
    """The study's stored points as one scored batch (feasibility refreshed if the constraints changed)."""
    record = store.study_record(study.name)
    if record is not None and record["namespace"] != study.namespace:
        raise ConfigError(study.origin, "name",
                          f"a study named '{study.name}' in {store.path} was evaluated with a different workload, "
                          "SLOs, evaluator or serving runtime; give this study another name (or use another --db)")
    store.register_study(study.name, study.spec, study.scoring.to_dict(), study.namespace)
    names = list(dict.fromkeys([o.metric for o in study.scoring.objectives]
                               + [c.metric for c in study.scoring.constraints]))
    keys, status, stored_feasible, metrics = store.load_columns(study.name, names)
    feasible, objectives, violations = study.scoring.score_columns(status, metrics)
    changed = np.flatnonzero(feasible != stored_feasible)
    store.set_feasible(study.name, [keys[i] for i in changed], feasible[changed].tolist())
    n = len(keys)
    return Batch([0] * n, keys, [""] * n, status, [None] * n, metrics, feasible, objectives, violations,
                 study.context.kind, 0.0)


def _count(progress: Progress, study: Study, batch: Batch, rows: np.ndarray | None = None) -> None:
    status = np.asarray(batch.status, dtype=object)
    feasible, objectives = batch.feasible, batch.objectives
    if rows is not None:
        status, feasible, objectives = status[rows], feasible[rows], objectives[rows]
    progress.rejected += int((status == REJECTED).sum())
    progress.failed += int((status == FAILED).sum())
    progress.feasible += int(feasible.sum())
    if feasible.any():
        for j, objective in enumerate(study.scoring.objectives):
            values = objectives[feasible, j] * objective.sign
            best = float(values.min()) * objective.sign
            current = progress.best.get(objective.metric)
            if current is None or objective.sign * best < objective.sign * current:
                progress.best[objective.metric] = best


def _jobs(study: Study, items: list, chunk_size: int, workers: int) -> list[Job]:
    if not items:
        return []
    size = max(1, min(chunk_size, math.ceil(len(items) / workers)))
    return [Job(study.context, study.scoring, tuple(items[k:k + size])) for k in range(0, len(items), size)]


def run_study(study: Study, store: ResultStore, backend: Backend | None = None, *, budget: int | None = None,
              on_progress: Callable[[Progress], None] | None = None) -> Progress:
    """Run (or resume) ``study``, storing every evaluation in ``store``."""
    backend = backend or InlineBackend()
    total = budget if budget is not None else study.trial_budget()
    known = _Known()
    known.add(_stored(study, store))
    try:
        optimizer = make_optimizer(study.optimizer, study.space, study.scoring, study.seed, study.optimizer_options)
    except ConfigError as exc:  # an option the optimizer refuses: name the study file
        raise ConfigError(study.origin, exc.field, exc.problem) from None
    chunk_size = evaluator_class(study.context).chunk_size
    adaptive = optimizer.needs_feedback
    # non-adaptive optimizers: the batch size does not change what is asked, so size it for throughput
    batch_size = study.batch_size if adaptive else max(study.batch_size, chunk_size * backend.workers)
    namespace = study.namespace
    progress = Progress(total=total)
    start = time.perf_counter()
    writer = _Writer(store, study.name)
    try:
        while progress.asked < total:
            trials = optimizer.ask(min(batch_size, total - progress.asked))
            if not trials:
                break
            progress.asked += len(trials)
            keys, items, queued, answered = [], [], set(), []
            for t in trials:
                config_json = canonical_json(t.config)
                key = point_key(namespace, config_json)
                keys.append(key)
                if key in known or key in queued:
                    answered.append(key)  # stored, or asked twice in this batch: evaluated once
                else:
                    queued.add(key)
                    items.append((t.number, key, config_json, t.config))
            for batch in backend.map(_jobs(study, items, chunk_size, backend.workers)):
                writer.add(batch)
                known.add(batch)
                progress.evaluated += len(batch)
                _count(progress, study, batch)
                progress.elapsed_s = time.perf_counter() - start
                if on_progress:
                    on_progress(progress)
            writer.flush()
            progress.cached += len(answered)
            known.count(progress, study, answered)
            if adaptive:
                for t, key in zip(trials, keys):
                    optimizer.tell(t, known.feedback(key))
            progress.elapsed_s = time.perf_counter() - start
            if on_progress:
                on_progress(progress)
    finally:
        writer.flush()  # on Ctrl-C too: what was evaluated is kept
    progress.elapsed_s = time.perf_counter() - start
    return progress


__all__ = ["Progress", "run_study"]
