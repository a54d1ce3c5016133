"""Reading a study back: its points, its Pareto front, CSV export."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InfersimError
from .pareto import pareto_ranks
from .scoring import Objective, Scoring
from .store import ResultStore


@dataclass
class Point:
    key: str
    trial: int
    status: str
    feasible: bool
    config: dict
    metrics: dict | None
    error: str | None
    rank: int | None = None  # Pareto front number among feasible points (0 = front); None if not ranked


@dataclass
class StudyResults:
    name: str
    spec: dict
    scoring: Scoring
    points: list[Point]

    @property
    def varying(self) -> list[str]:
        """Configuration keys that take more than one value among the points (space order)."""
        if not self.points:
            return []
        names = list(dict.fromkeys([*self.spec.get("space", {}), *self.points[0].config]))
        return [n for n in names if len({json.dumps(p.config.get(n)) for p in self.points}) > 1]


def load_results(store: ResultStore, study: str) -> StudyResults:
    record = store.study_record(study)
    if record is None:
        known = store.study_names()
        raise InfersimError(f"no study '{study}' in {store.path}; stored: {', '.join(known) or '(none)'}")
    points = [Point(key, trial, status, feasible, json.loads(config), _metrics(metrics), error)
              for key, trial, status, feasible, config, metrics, error in store.load(study)]
    return StudyResults(study, record["spec"], Scoring.from_dict(record["scoring"]), points)


def _metrics(text: str | None) -> dict | None:
    if not text:
        return None
    values = {k: v for k, v in json.loads(text).items() if v is not None}
    return values or None


def parse_objectives(texts: list[str], known_metrics: set[str] | None = None) -> tuple[Objective, ...]:
    """``["usd_per_million_output_tokens:min", "goodput_tokens_per_s_per_device:max"]`` -> objectives."""
    out = []
    for text in texts:
        metric, _, direction = text.partition(":")
        direction = direction or "min"
        if direction not in ("min", "max"):
            raise InfersimError(f"--objective '{text}': direction must be min or max (METRIC:min|max)")
        if known_metrics is not None and metric not in known_metrics:
            raise InfersimError(f"--objective '{text}': no point has metric '{metric}'; known: "
                                + ", ".join(sorted(known_metrics)))
        out.append(Objective(metric, direction))
    return tuple(out)


def rank_points(results: StudyResults, objectives: tuple[Objective, ...] | None = None) -> list[Point]:
    """Set ``rank`` on every feasible point with all objective metrics; returns those points, front first."""
    objectives = objectives or results.scoring.objectives
    ranked = [p for p in results.points if p.feasible and p.metrics
              and all(isinstance(p.metrics.get(o.metric), (int, float)) for o in objectives)]
    for p in results.points:
        p.rank = None
    if not ranked:
        return []
    values = np.array([[p.metrics[o.metric] for o in objectives] for p in ranked], dtype=np.float64)
    ranks = pareto_ranks(values, [o.direction for o in objectives])
    for p, r in zip(ranked, ranks.tolist()):
        p.rank = r
    first = objectives[0]
    ranked.sort(key=lambda p: (p.rank, first.sign * p.metrics[first.metric]))
    return ranked


def pareto_front(results: StudyResults, objectives: tuple[Objective, ...] | None = None) -> list[Point]:
    return [p for p in rank_points(results, objectives) if p.rank == 0]


def export_csv(results: StudyResults, path: str | Path) -> int:
    """Every point, one row: identity, status, feasibility, Pareto rank, config.* and metrics.* columns."""
    rank_points(results)
    config_keys: list[str] = []
    metric_keys: list[str] = []
    for p in results.points:
        for k in p.config:
            if k not in config_keys:
                config_keys.append(k)
        for k in p.metrics or {}:
            if k not in metric_keys:
                metric_keys.append(k)
    path = Path(path)
    try:
        handle = path.open("w", newline="")
    except OSError as exc:
        raise InfersimError(f"{path}: cannot write the CSV: {exc.strerror}") from None
    with handle:
        w = csv.writer(handle)
        w.writerow(["study", "key", "trial", "status", "feasible", "pareto_rank", "error",
                    *(f"config.{k}" for k in config_keys), "device_basis", *(f"metrics.{k}" for k in metric_keys)])
        basis = results.spec.get("device_basis", {})
        for p in results.points:
            m = p.metrics or {}
            w.writerow([results.name, p.key, p.trial, p.status, p.feasible, "" if p.rank is None else p.rank,
                        p.error or "", *(p.config.get(k, "") for k in config_keys),
                        basis.get(str(p.config.get("device", "")), ""),
                        *("" if m.get(k) is None else m[k] for k in metric_keys)])
    return len(results.points)
