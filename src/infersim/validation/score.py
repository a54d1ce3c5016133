"""Running the validation and scoring it: per row, and MdAPE / p90 / bias by group.

The error of a row is ``(predicted - measured) / measured`` of its output tokens/s (> 0:
the model is optimistic). The group statistics are those of the kernel-level fidelity
report (:func:`infersim.fidelity.metrics.summarize_groups`): MdAPE = median |error|,
p90 = 90th percentile of |error| (linear interpolation), bias = median signed error.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .predict import RowPrediction, RunSize, predict_row
from .table import DatasetSpec, SystemMeasurement

#: the groupings printed by ``infersim validate`` (column -> what it holds)
GROUPINGS: dict[str, str] = {
    "split": "dev half (modelling choices may look at it) or test half (reported, never tuned on)",
    "device": "catalog device",
    "model": "catalog model",
    "precision": "weights/activations/KV dtypes",
    "shape": "dataset (its input/output length distribution)",
    "scenario": "MLPerf scenario (Offline or Server)",
    "engine": "serving engine of the submission",
}


#: the two halves of the table (see :func:`split_of`)
SPLITS = ("dev", "test")


def split_of(row_id: str) -> str:
    """The half a row belongs to, fixed by its id alone: ``dev`` when the first byte of the SHA-256 of
    the id is even, else ``test``. Modelling choices (structure, the default runtime) may look at the
    dev half; the test half is reported and never tuned on (issue 17's rule; docs/validation.md)."""
    return SPLITS[hashlib.sha256(row_id.encode()).digest()[0] % 2]


def columns_of(predictions: Sequence[RowPrediction]) -> dict[str, np.ndarray]:
    """The grouping columns and the measured throughput, one entry per prediction."""
    rows = [p.row for p in predictions]
    return {
        "split": np.array([split_of(r.id) for r in rows], dtype=object),
        "device": np.array([r.device for r in rows], dtype=object),
        "model": np.array([r.model for r in rows], dtype=object),
        "precision": np.array([r.precision for r in rows], dtype=object),
        "shape": np.array([r.dataset for r in rows], dtype=object),
        "scenario": np.array([r.scenario for r in rows], dtype=object),
        "engine": np.array([r.engine for r in rows], dtype=object),
        "measured": np.array([r.measured_output_tokens_per_s for r in rows], dtype=np.float64),
    }


@dataclass
class ValidationReport:
    predictions: list[RowPrediction]
    overall: dict
    groups: dict[str, list[dict]] = field(default_factory=dict)
    #: the same groupings within each half: half -> grouping -> one dict per value
    halves: dict[str, dict[str, list[dict]]] = field(default_factory=dict)

    def rows_dict(self) -> list[dict]:
        out = []
        for p in self.predictions:
            r = p.row
            out.append({
                "id": r.id, "split": split_of(r.id), "round": r.round, "submitter": r.submitter, "device": r.device,
                "device_count": r.device_count, "model": r.model, "tp": r.tp, "pp": r.pp, "ep": r.ep,
                "replicas": r.replicas, "precision": r.precision, "shape": r.dataset, "scenario": r.scenario,
                "engine": r.engine, "engine_version": r.engine_version,
                "measured_output_tokens_per_s": r.measured_output_tokens_per_s,
                "predicted_output_tokens_per_s": p.predicted_output_tokens_per_s,
                "signed_error": p.signed_error, "ape": abs(p.signed_error),
                "capacity_rps": p.capacity_rps, "runtime": p.runtime, "device_basis": p.device_basis,
                "requests_per_replica": p.requests, "simulations": p.simulations, "wall_s": p.wall_s,
                "source": r.source,
            })
        return out

    def to_dict(self) -> dict:
        return {"overall": self.overall, "groups": self.groups, "halves": self.halves, "rows": self.rows_dict()}


def score(predictions: Sequence[RowPrediction], groupings: Sequence[str] = tuple(GROUPINGS)) -> ValidationReport:
    """MdAPE, p90 |error| and median signed bias overall and per grouping, and per grouping within
    each half of :func:`split_of` (``halves``; a half's overall figures are its ``split`` group)."""
    from ..fidelity.metrics import summarize_groups

    predictions = list(predictions)
    if not predictions:
        nan = math.nan
        return ValidationReport([], {"rows": 0, "mdape": nan, "p90_ape": nan, "median_signed_bias": nan})
    cols = columns_of(predictions)
    pred = np.array([p.predicted_output_tokens_per_s for p in predictions], dtype=np.float64)
    overall = summarize_groups(cols, pred, by=(), meas_column="measured")[0]
    groups = {g: summarize_groups(cols, pred, by=(g,), meas_column="measured") for g in groupings}
    halves: dict[str, dict[str, list[dict]]] = {}
    for g in groupings:
        if g == "split":
            continue
        for entry in summarize_groups(cols, pred, by=("split", g), meas_column="measured"):
            halves.setdefault(str(entry.pop("split")), {}).setdefault(g, []).append(entry)
    return ValidationReport(predictions, overall, groups, halves)


def run_validation(rows: Sequence[SystemMeasurement], datasets: dict[str, DatasetSpec], size: RunSize = RunSize(),
                   on_row: Callable[[SystemMeasurement], None] | None = None,
                   runtime: str | None = None, moe_routing: str | None = None,
                   kernels: str | None = None) -> ValidationReport:
    """Predict every row (``on_row`` is called after each, for progress) and score them; ``runtime``
    replaces every row's own runtime (to compare runtime profiles on the same table), ``moe_routing``
    the MoE routing model of every row (default: the step graph's); ``kernels`` which kernel profile
    each row's device is loaded with (``infersim.validation.predict.row_efficiency``: None, the default
    profiles; "engine", the row's own engine's where shipped)."""
    predictions = []
    for row in rows:
        predictions.append(predict_row(row, datasets[row.dataset], size, runtime=runtime, moe_routing=moe_routing,
                                       kernels=kernels))
        if on_row is not None:
            on_row(row)
    return score(predictions)
