"""A compression record measured here, as transforms: the compressed shape and its measured quality cost.

``infersim compress`` writes ``record.json``: the (model, method, setting) it compressed and the
quality it lost on held-out text. Read back, the setting becomes the transforms that model its
speed (``sparsity``: the N:M pattern or unstructured density; ``quant=w4a16|w8a16``: the bits and
group size with zero points, as the record's asymmetric min-max quantization stores them;
``lowrank``: the adapter rank ratio) and the measured quality delta becomes their accuracy cost,
labelled "measured here" in place of the published figure. The whole delta sits on the first
transform and the others carry 0, so a study's summed ``accuracy_delta`` counts it once. They come in
key order (``lowrank``, ``quant``, ``sparsity``), the order a study's transform knobs apply them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import ConfigError
from .base import AccuracyCost, Transform
from .lowrank import LowRankAdapters
from .quant import Quantization
from .sparsity import Sparsity

#: weight bits -> the weight-only quantization scheme whose kernels are modelled
SCHEME_OF_BITS = {4: "w4a16", 8: "w8a16"}


class _RecordFile(BaseModel):
    """The fields of ``record.json`` a study reads (others are kept in the file, ignored here)."""

    model_config = ConfigDict(extra="ignore")
    model: str
    method: str
    setting: str
    sparsity: float = Field(ge=0.0, lt=1.0)
    n: int | None = Field(default=None, ge=1)
    m: int | None = Field(default=None, ge=2)
    bits: int | None = None
    group_size: int = Field(ge=1)
    lowrank: float = Field(ge=0.0, lt=1.0)
    quality_metric: str
    quality_delta: float
    date: str
    source: str


@dataclass(frozen=True)
class MeasuredRecord:
    path: str
    model: str
    method: str
    setting: str
    pattern: str  # dense | unstructured | N:M
    density: float  # kept fraction of the linear weights
    bits: int | None
    group_size: int
    lowrank: float
    metric: str
    delta: float
    date: str

    @property
    def cost(self) -> AccuracyCost:
        return AccuracyCost(self.metric, self.delta, self.model,
                            f"infersim compress --method {self.method}: {self.setting}, {self.date}, {self.path}",
                            published=False, measured=True)

    def transforms(self) -> tuple[Transform, ...]:
        """The transforms of the record's shape, the first carrying the measured cost, the others 0."""
        origin = f"accuracy record {self.path}"
        out: list[Transform] = []
        if self.pattern == "unstructured":
            out.append(Sparsity(pattern="unstructured", density=self.density, origin=origin))
        elif self.pattern != "dense":
            out.append(Sparsity(pattern=self.pattern, origin=origin))
        if self.bits is not None:
            out.append(Quantization(scheme=SCHEME_OF_BITS[self.bits], group=self.group_size, zero_points=True,
                                    origin=origin))
        if self.lowrank:
            out.append(LowRankAdapters(ratio=self.lowrank, origin=origin))
        rest = AccuracyCost(self.metric, 0.0, self.model, f"counted once, in the record's first transform ({origin})",
                            published=False, measured=True)
        out.sort(key=lambda t: t.key)  # registry (key) order, as a study's transform knobs apply them
        for t in out:
            t.validate()
        return tuple(replace(t, measured=self.cost if i == 0 else rest) for i, t in enumerate(out))


def read_record(path: str | Path) -> MeasuredRecord:
    """``record.json`` as written by ``infersim compress`` (errors name the file and the field)."""
    from ...userfile import load_json_object

    return record_from_dict(load_json_object(path), str(path))


def record_from_dict(data: dict, path: str) -> MeasuredRecord:
    """A record's fields (``CompressionRecord.to_dict()``), checked; ``path`` names it in errors."""
    from ...hardware.catalog import format_validation_error

    try:
        rec = _RecordFile.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(str(path), err) from None
    if (rec.n is None) != (rec.m is None) or (rec.n is not None and rec.n >= rec.m):
        raise ConfigError(path, "n", f"N:M needs both N and M with N < M, got {rec.n}:{rec.m}")
    if rec.bits is not None and rec.bits not in SCHEME_OF_BITS:
        raise ConfigError(path, "bits", f"{rec.bits}-bit weights have no modelled kernel; expected one of "
                          f"{', '.join(map(str, SCHEME_OF_BITS))} or null")
    if not rec.source.startswith("measured here"):
        raise ConfigError(path, "source", f"expected a record written by infersim compress ('measured here ...'), "
                          f"got '{rec.source}'")
    pattern = f"{rec.n}:{rec.m}" if rec.n is not None else ("unstructured" if rec.sparsity > 0 else "dense")
    density = rec.n / rec.m if rec.n is not None else 1.0 - rec.sparsity
    return MeasuredRecord(str(path), rec.model, rec.method, rec.setting, pattern, density, rec.bits, rec.group_size,
                          rec.lowrank, rec.quality_metric, rec.quality_delta, rec.date)
