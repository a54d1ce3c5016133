"""The validation table: published whole-system throughputs with their exact configurations.

A row of ``data/system_throughputs.csv`` is one measured result (one MLPerf submission's
Offline or Server run): the model and device, how many devices and their TP / PP / EP
layout, the precision of weights, activations and KV cache, the dataset (whose length
distribution lives in ``data/datasets.yaml``), the engine, its version, the registered
serving runtime that models it (:mod:`infersim.runtime`) and the knobs the
submission set (batch cap, tokens per step, KV memory fraction), the Server latency
constraints, the measured output tokens/s and samples/s, and where each came from
(``source``: the results file; ``config_source``: the files that give the parallelism and
precision). See ``docs/validation.md`` for how the table was built.

A malformed row, an unknown model, device or dataset, or a missing source raises
:class:`~infersim.errors.ConfigError` naming the file, the row and the field.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError, InfersimError, unknown_name_error
from ..hardware.catalog import get_device
from ..hardware.choices import KERNEL_SET_ENGINES, known_kernel_set
from ..models.catalog import get_model
from ..runtime import known_runtime
from ..serving.scenario import LengthDist, check_dtype

_DATA = "data"
TABLE_NAME = "system_throughputs.csv"
DATASETS_NAME = "datasets.yaml"

#: the engines a row may name (the serving runtimes infersim models)
ENGINES = ("trtllm", "vllm", "sglang")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemMeasurement(_Strict):
    """One published measurement and the configuration that produced it."""

    id: str = Field(min_length=1)
    round: str = Field(min_length=1)
    submitter: str = Field(min_length=1)
    system: str = Field(min_length=1)
    benchmark: str = Field(min_length=1)
    scenario: Literal["Offline", "Server"]
    model: str = Field(min_length=1)
    device: str = Field(min_length=1)
    device_count: int = Field(ge=1, le=100_000)
    tp: int = Field(ge=1, le=1024)
    pp: int = Field(ge=1, le=1024)
    ep: int = Field(ge=1, le=1024)
    replicas: int = Field(ge=1, le=100_000)
    weight_dtype: str
    act_dtype: str
    kv_dtype: str
    dataset: str = Field(min_length=1)
    #: measured output tokens per sample of this run (tokens/s divided by samples/s)
    output_mean_tokens: float = Field(gt=0.0)
    engine: Literal[ENGINES]
    engine_version: str = Field(min_length=1)
    #: the kernel set of the row's own engine release where one was measured (a name of
    #: :data:`~infersim.hardware.choices.ENGINE_KERNELS` of this engine, e.g. ``trtllm-1.0``; optional, its
    #: source in ``notes``); ``validate --engine-kernels`` loads the row's device with it
    engine_kernels: str | None = None
    #: the registered serving runtime that models this engine (:mod:`infersim.runtime`)
    runtime: str = Field(min_length=1)
    scheduler: Literal["continuous", "chunked", "inflight"]
    #: the engine's batch cap (TensorRT-LLM max batch size, vLLM max_num_seqs)
    max_batch: int = Field(ge=1, le=1_000_000)
    #: tokens per engine step (TensorRT-LLM max_num_tokens, vLLM max_num_batched_tokens)
    max_tokens_per_step: int = Field(ge=1, le=10_000_000)
    #: KV memory fraction as the engine defines it (TensorRT-LLM: of the memory free after the
    #: weights; vLLM / SGLang: of the whole device)
    kv_memory_fraction: float = Field(gt=0.0, le=1.0)
    #: decode steps per scheduler call (vLLM num_scheduler_steps; optional column, default 1)
    scheduler_steps: int = Field(1, ge=1, le=1024)
    #: requests the measured Offline run issued (MLPerf LoadGen's ``samples_per_query`` in the run's
    #: mlperf_log_summary.txt; a benchmark script's prompt count); optional, Offline rows only
    samples: int | None = Field(None, ge=1, le=1_000_000_000)
    #: tokens one request may prefill in a step (vLLM's long_prefill_token_threshold); optional, chunked rows
    long_prefill_token_threshold: int | None = Field(None, ge=1, le=10_000_000)
    ttft_p99_ms: float | None = Field(None, gt=0.0)
    tpot_p99_ms: float | None = Field(None, gt=0.0)
    measured_output_tokens_per_s: float = Field(gt=0.0)
    measured_samples_per_s: float = Field(gt=0.0)
    source: str = Field(min_length=10)
    config_source: str = Field(min_length=10)
    notes: str = ""

    @field_validator("weight_dtype", "act_dtype", "kv_dtype")
    @classmethod
    def _known_dtype(cls, v: str) -> str:
        return check_dtype(v)

    _known_kernels = field_validator("engine_kernels")(
        classmethod(lambda cls, v: None if v is None else known_kernel_set(v)))

    _known_runtime = field_validator("runtime")(classmethod(lambda cls, v: known_runtime(v)))

    @model_validator(mode="after")
    def _consistent(self):
        if self.tp * self.pp * self.replicas != self.device_count:
            raise ValueError(f"tp x pp x replicas = {self.tp} x {self.pp} x {self.replicas} must equal "
                             f"device_count ({self.device_count})")
        slos = (self.ttft_p99_ms, self.tpot_p99_ms)
        if self.scenario == "Server" and None in slos:
            raise ValueError("a Server row needs both ttft_p99_ms and tpot_p99_ms (its latency constraints)")
        if self.scenario == "Offline" and slos != (None, None):
            raise ValueError("an Offline row has no latency constraints; leave ttft_p99_ms and tpot_p99_ms empty")
        if self.long_prefill_token_threshold is not None and self.scheduler != "chunked":
            raise ValueError("long_prefill_token_threshold caps a request's prefill chunk; it needs scheduler chunked")
        if self.engine_kernels is not None and KERNEL_SET_ENGINES[self.engine_kernels] != self.engine:
            raise ValueError(f"engine_kernels '{self.engine_kernels}' are not kernels of this row's engine "
                             f"({self.engine})")
        if self.scenario == "Server" and self.samples is not None:
            raise ValueError("samples is the request count of an Offline run; a Server row leaves it empty")
        return self

    @property
    def precision(self) -> str:
        """``weights/activations/KV``, e.g. ``fp8/fp8/fp8``."""
        return f"{self.weight_dtype}/{self.act_dtype}/{self.kv_dtype}"


class OutputShape(_Strict):
    """Shape of a dataset's output lengths; the median is solved per row from its measured mean."""

    dist: Literal["lognormal"]
    sigma: float = Field(ge=0.0, le=5.0)
    min: int = Field(1, ge=1)
    max: int = Field(ge=1, le=10_000_000)

    @model_validator(mode="after")
    def _ordered(self):
        if self.max <= self.min:
            raise ValueError(f"max ({self.max}) must be > min ({self.min})")
        return self


class DatasetSpec(_Strict):
    description: str = Field(min_length=3)
    samples: int = Field(ge=1)
    input_tokens: LengthDist
    input_basis: str = Field(min_length=10)
    output_tokens: OutputShape
    output_basis: str = Field(min_length=10)


def _data_path(name: str) -> Path:
    return Path(str(resources.files(__package__).joinpath(_DATA, name)))


def default_table_path() -> Path:
    """The bundled table (``infersim/validation/data/system_throughputs.csv``)."""
    return _data_path(TABLE_NAME)


def _pydantic_problem(err: ValidationError) -> tuple[str | None, str]:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown field (not part of the format)"
    elif first["type"] == "missing":
        msg = "required field is missing or empty"
    return field, msg


@functools.lru_cache(maxsize=8)
def _load_datasets_cached(path: str) -> dict[str, DatasetSpec]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError:
        raise ConfigError(p, None, "file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(p, None, f"not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(p, None, "expected a mapping of dataset names to length distributions")
    out = {}
    for name, spec in data.items():
        try:
            out[str(name)] = DatasetSpec.model_validate(spec)
        except ValidationError as err:
            field, msg = _pydantic_problem(err)
            raise ConfigError(p, f"{name}.{field}" if field else str(name), msg) from None
    return out


def load_datasets(path: str | Path | None = None) -> dict[str, DatasetSpec]:
    """Dataset name -> :class:`DatasetSpec` (the bundled ``datasets.yaml`` unless ``path``)."""
    return dict(_load_datasets_cached(str(path if path is not None else _data_path(DATASETS_NAME))))


def _row_error(path: Path, lineno: int, row_id: str, field: str | None, problem: str) -> ConfigError:
    where = f"{path}: row {lineno}" + (f" ({row_id})" if row_id else "")
    return ConfigError(where, field, problem)


def _check_names(row: SystemMeasurement, path: Path, lineno: int, datasets: dict[str, DatasetSpec]) -> None:
    for field, getter in (("model", get_model), ("device", get_device)):
        try:
            getter(getattr(row, field))
        except InfersimError as exc:
            raise _row_error(path, lineno, row.id, field, str(exc)) from None
    if row.dataset not in datasets:
        raise _row_error(path, lineno, row.id, "dataset", str(unknown_name_error("dataset", row.dataset, datasets)))


def load_table(path: str | Path | None = None, datasets: dict[str, DatasetSpec] | None = None
               ) -> list[SystemMeasurement]:
    """Every row of a validation table (the bundled one unless ``path``), checked.

    Raises :class:`ConfigError` naming the file, the row (its line number and id) and the
    field for a malformed value, a missing source, or an unknown model, device or dataset.
    """
    p = Path(path) if path is not None else default_table_path()
    datasets = datasets if datasets is not None else load_datasets()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError:
        raise ConfigError(p, None, "file not found") from None
    reader = csv.DictReader(text.splitlines())
    missing = [f for f, info in SystemMeasurement.model_fields.items()
               if info.is_required() and f not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(p, missing[0], f"column missing from the header (needs: {', '.join(missing)})")
    rows: list[SystemMeasurement] = []
    seen: set[str] = set()
    for lineno, raw in enumerate(reader, start=2):
        if None in raw:
            raise _row_error(p, lineno, raw.get("id") or "", None,
                             f"{len(raw[None])} more values than the header has columns")
        data = {k: v.strip() for k, v in raw.items() if v is not None and v.strip() != ""}
        try:
            row = SystemMeasurement.model_validate(data)
        except ValidationError as err:
            field, msg = _pydantic_problem(err)
            raise _row_error(p, lineno, data.get("id", ""), field, msg) from None
        if row.id in seen:
            raise _row_error(p, lineno, row.id, "id", "duplicate id (every row needs its own)")
        seen.add(row.id)
        _check_names(row, p, lineno, datasets)
        rows.append(row)
    if not rows:
        raise ConfigError(p, None, "no rows")
    return rows


def select(rows: Iterable[SystemMeasurement], *, device: Sequence[str] = (), model: Sequence[str] = (),
           scenario: Sequence[str] = (), ids: Sequence[str] = ()) -> list[SystemMeasurement]:
    """The rows matching every given filter (each a list of accepted values, case-insensitive)."""
    def keep(value: str, accepted: Sequence[str]) -> bool:
        return not accepted or value.lower() in {a.lower() for a in accepted}

    return [r for r in rows if keep(r.device, device) and keep(r.model, model) and keep(r.scenario, scenario)
            and keep(r.id, ids)]
