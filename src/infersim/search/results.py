"""Reading a study back: its points, its Pareto front, CSV export."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InfersimError
from .pareto import pareto_mask, pareto_ranks
from .scoring import Objective, Scoring
from .store import ResultStore


class Point:
    """One stored point. Its configuration and metrics are parsed from the stored JSON on first
    access, so that reading a 200k-point study for its front parses only the rows shown."""

    __slots__ = ("key", "trial", "status", "feasible", "_config", "_metrics", "error", "rank")

    def __init__(self, key: str, trial: int, status: str, feasible: bool, config: dict | str,
                 metrics: dict | str | None, error: str | None, rank: int | None = None) -> None:
        self.key, self.trial, self.status, self.feasible = key, trial, status, feasible
        self._config, self._metrics, self.error = config, metrics, error
        self.rank = rank  # Pareto front number among feasible points (0 = front); None if not ranked

    @property
    def config(self) -> dict:
        if isinstance(self._config, str):
            self._config = json.loads(self._config)
        return self._config

    @property
    def metrics(self) -> dict | None:
        if isinstance(self._metrics, str):
            self._metrics = _metrics(self._metrics)
        return self._metrics

    def __repr__(self) -> str:
        return f"Point(key={self.key!r}, trial={self.trial}, status={self.status!r}, feasible={self.feasible})"


@dataclass
class StudyResults:
    name: str
    spec: dict
    scoring: Scoring
    points: list[Point]
    #: every stored metric as a float column, in the order of ``points`` (NaN where absent)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    varying_keys: list[str] | None = None

    @property
    def varying(self) -> list[str]:
        """Configuration keys that take more than one value among the points (space order)."""
        if self.varying_keys is not None:
            return self.varying_keys
        if not self.points:
            return []
        names = list(dict.fromkeys([*self.spec.get("space", {}), *self.points[0].config]))
        return [n for n in names if len({json.dumps(p.config.get(n)) for p in self.points}) > 1]

    def column(self, metric: str) -> np.ndarray:
        """Values of ``metric`` per point (NaN where a point lacks it)."""
        if metric in self.columns:
            return self.columns[metric]
        values = np.full(len(self.points), np.nan)
        for i, p in enumerate(self.points):
            v = (p.metrics or {}).get(metric)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                values[i] = v
        return values


def load_results(store: ResultStore, study: str, metrics: list[str] | None = None) -> StudyResults:
    """A study's points. With ``metrics``, only those metric columns are read, and each point's
    configuration and metrics JSON is left in the database until :func:`fill_points` asks for it
    (``results pareto`` on a 200k-point study reads the JSON of its front only)."""
    record = store.study_record(study)
    if record is None:
        known = store.study_names()
        raise InfersimError(f"no study '{study}' in {store.path}; stored: {', '.join(known) or '(none)'}")
    light = metrics is not None
    rows = store.load(study, light=light)
    if light:
        points = [Point(key, trial, status, feasible, None, None, error) for key, trial, status, feasible, error in rows]
    else:
        points = [Point(*row) for row in rows]
    names = list(dict.fromkeys(metrics)) if light else store.metric_names(study)
    columns = store.load_columns(study, names)[3] if points else {}
    candidates = list(record["spec"].get("space", {}))
    if points:
        first = store.configs(study, [points[0].key])[points[0].key][0] if light else points[0].config
        candidates = list(dict.fromkeys([*candidates, *(json.loads(first) if light else first)]))
    varying = store.varying_config_keys(study, candidates)
    return StudyResults(study, record["spec"], Scoring.from_dict(record["scoring"]), points, columns, varying)


def fill_points(store: ResultStore, study: str, points: list[Point]) -> list[Point]:
    """Read the configuration and metrics JSON of ``points`` loaded without them."""
    missing = [p for p in points if p._config is None]
    if missing:
        texts = store.configs(study, [p.key for p in missing])
        for p in missing:
            p._config, p._metrics = texts[p.key]
    return points


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


def _objective_values(results: StudyResults, objectives: tuple[Objective, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the feasible points with every objective finite, their objective values)."""
    feasible = np.fromiter((p.feasible for p in results.points), dtype=bool, count=len(results.points))
    values = np.column_stack([results.column(o.metric) for o in objectives]) if results.points else \
        np.empty((0, len(objectives)))
    eligible = np.flatnonzero(feasible & np.isfinite(values).all(axis=1))
    return eligible, values[eligible]


def _sorted_points(results: StudyResults, idx: np.ndarray, values: np.ndarray, ranks: np.ndarray,
                   first: Objective) -> list[Point]:
    order = np.lexsort((first.sign * values[:, 0], ranks))
    return [results.points[i] for i in idx[order].tolist()]


def rank_points(results: StudyResults, objectives: tuple[Objective, ...] | None = None) -> list[Point]:
    """Set ``rank`` on every feasible point with all objective metrics; returns those points, front first."""
    objectives = objectives or results.scoring.objectives
    for p in results.points:
        p.rank = None
    idx, values = _objective_values(results, objectives)
    if not idx.size:
        return []
    ranks = pareto_ranks(values, [o.direction for o in objectives])
    for i, r in zip(idx.tolist(), ranks.tolist()):
        results.points[i].rank = r
    return _sorted_points(results, idx, values, ranks, objectives[0])


def pareto_front(results: StudyResults, objectives: tuple[Objective, ...] | None = None) -> list[Point]:
    """The non-dominated feasible points, best first objective first (only the front is computed)."""
    objectives = objectives or results.scoring.objectives
    idx, values = _objective_values(results, objectives)
    if not idx.size:
        return []
    mask = pareto_mask(values, [o.direction for o in objectives])
    front = idx[mask]
    for i in front.tolist():
        results.points[i].rank = 0
    return _sorted_points(results, front, values[mask], np.zeros(front.size, dtype=np.int64), objectives[0])


def export_csv(store: ResultStore, study: str, path: str | Path) -> int:
    """Every point of ``study``, one row: identity, status, feasibility, Pareto rank, config.* and
    metrics.* columns. DuckDB writes the file (a 200k-point study in about a second); the Pareto
    ranks are computed here and joined by key."""
    record = store.study_record(study)
    if record is None:
        raise InfersimError(f"no study '{study}' in {store.path}; stored: {', '.join(store.study_names()) or '(none)'}")
    objectives = Scoring.from_dict(record["scoring"]).objectives
    keys, _, feasible, columns = store.load_columns(study, [o.metric for o in objectives])
    values = np.column_stack([columns[o.metric] for o in objectives]) if keys else np.empty((0, len(objectives)))
    eligible = np.flatnonzero(feasible & np.isfinite(values).all(axis=1))
    ranks = np.full(len(keys), -1, dtype=np.int64)
    if eligible.size:
        ranks[eligible] = pareto_ranks(values[eligible], [o.direction for o in objectives])
    first = store.con.execute("SELECT config FROM evaluations WHERE study = ? ORDER BY trial, key LIMIT 1",
                              [study]).fetchall()
    config_keys: list[str] = list(json.loads(first[0][0])) if first else []
    config_keys += [k for k in record["spec"].get("space", {}) if k not in config_keys]
    keys = np.array(keys, dtype=object)
    quote = lambda name: '"' + name.replace('"', '""') + '"'  # noqa: E731
    config_sql = "".join(f", json_extract_string(config, '$.{quote(_sql(k))}') AS {quote('config.' + k)}"
                         for k in config_keys)
    basis = record["spec"].get("device_basis", {})  # what each device's numbers rest on (the study's)
    cases = "".join(f" WHEN '{_sql(str(d))}' THEN '{_sql(str(b))}'" for d, b in basis.items())
    config_sql += (f", CASE json_extract_string(config, '$.device'){cases} ELSE '' END AS device_basis" if cases
                   else ", '' AS device_basis")
    names = store.metric_names(study)
    if names:
        shape = _sql(json.dumps({m: "DOUBLE" for m in names}))
        metric_sql = "".join(f", s.{quote(m)} AS {quote('metrics.' + m)}" for m in names)
        transform = f", json_transform(metrics, '{shape}') AS s"
    else:
        metric_sql = transform = ""
    path = Path(path)
    view = f"_ranks_{id(keys)}"
    store.con.register(view, {"key": keys, "pareto_rank": ranks})
    query = (f"SELECT '{_sql(study)}' AS study, e.key, trial, status, "
             "CASE WHEN feasible THEN 'True' ELSE 'False' END AS feasible, "  # as Python's csv wrote them
             f"CASE WHEN r.pareto_rank >= 0 THEN r.pareto_rank END AS pareto_rank, coalesce(error, '') AS error"
             f"{config_sql}{metric_sql} FROM (SELECT *{transform} FROM evaluations WHERE study = '{_sql(study)}') e "
             f"JOIN {view} r ON r.key = e.key ORDER BY trial, e.key")
    try:
        store.con.execute(f"COPY ({query}) TO '{_sql(str(path))}' (FORMAT CSV, HEADER)")
    except Exception as exc:  # duckdb.IOException and kin: the file could not be written
        if type(exc).__module__.split(".")[0] != "duckdb":
            raise
        raise InfersimError(f"{path}: cannot write the CSV: {str(exc).splitlines()[0]}") from None
    finally:
        store.con.unregister(view)
    return len(keys)


def _sql(text: str) -> str:
    return text.replace("'", "''")
