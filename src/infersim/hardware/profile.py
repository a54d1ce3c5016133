"""Shipped device profiles: a catalog device's efficiency section fitted to measured kernels.

The spec sheets (``data/<device>.yaml``) hold what vendors publish; the profiles
(``data/profiles/<device>.yaml``) hold how kernels really use the device: the efficiency
section that ``infersim calibrate`` fits, with its provenance (data package and version,
rows, date, fit MdAPE per stage, and a check slice that the tests recompute). A device
without measurements ships the profile carried over from the nearest measured device
(:func:`infersim.fidelity.transfer.transfer_efficiency`) and says so.

Every catalog device is loaded with its profile unless the spec-sheet-only model is
asked for (``efficiency="spec"``, or ``NAME@spec``); :attr:`Device.basis` states which:
``calibrated on aiconfigurator-core 0.12.0 (N rows, DATE)``, ``transferred from h100-sxm``
or ``spec sheet only``. ``infersim calibrate --all --write-profiles`` regenerates them.

The default profiles are fitted on each device's TensorRT-LLM kernel tables where it has them.
A serving engine's own kernels can run far from those (Mixtral's MoE layer takes 2.2-5.2x
longer under vLLM and SGLang than under TensorRT-LLM on the same H100,
``benchmarks/bench_moe_engines.py``), so the measured devices also ship a profile per engine
in :data:`~infersim.hardware.choices.ENGINE_KERNELS` (``profiles/<engine>/<device>.yaml``,
fitted on that engine's tables only; ``NAME@vllm``, ``efficiency="vllm"``;
``infersim calibrate --all --write-profiles --framework vllm`` regenerates them). A device
whose kernels were not measured under an engine has no such profile (no transfer).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..errors import InfersimError
from .choices import known_efficiency
from .schema import EfficiencySpec, _Strict

#: what a device without a profile (or loaded with efficiency="spec") is based on
SPEC_ONLY = "spec sheet only"
#: the command that writes every profile
REGENERATE = "infersim calibrate --all --write-profiles"
#: how a profile's basis names the engine whose kernels it was fitted on
ENGINE_TITLES = {"trtllm": "TensorRT-LLM", "vllm": "vLLM", "sglang": "SGLang", "trtllm-1.0": "TensorRT-LLM 1.0"}


class CheckSlice(_Strict):
    """The profile's own MdAPE on a small deterministic slice of its rows, per op family
    (recomputed by the tests: a profile that the current cost model no longer reproduces is stale)."""

    rows_per_family: int = Field(gt=0, description="rows per family, those with the smallest row hash")
    seed: int = Field(ge=0, description="seed of the row hash")
    mdape: dict[str, float] = Field(description="median absolute percentage error per family, as a fraction")


class Provenance(_Strict):
    """Where a profile's numbers come from."""

    basis: Literal["calibrated", "transferred"]
    data: str = Field(min_length=1, description="measurement package, e.g. aiconfigurator-core")
    version: str = Field(min_length=1, description="its version")
    rows: int = Field(gt=0, description="measured rows the fit used (of the source device when transferred)")
    rows_measured: int = Field(gt=0, description="the device's rows in the data (the fit subsamples each stage)")
    date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="day of the fit, ISO format")
    fit_mdape: dict[str, float] = Field(description="fit MdAPE per calibration stage, as a fraction")
    max_rows: int = Field(gt=0, description="rows per stage the fit subsampled to")
    transferred_from: str | None = Field(default=None, description="the measured device whose fit was carried over")
    scaled_by: str | None = Field(default=None, description="transferred profiles: the published measurement of "
                                                             "the target its GEMM fractions were rescaled to")
    check: CheckSlice | None = Field(default=None, description="calibrated profiles: the check slice")
    framework: str | None = Field(default=None, description="the serving engine whose kernel tables the fit "
                                                            "used (None: per op, the first of TensorRT-LLM, "
                                                            "vLLM, SGLang with a table)")
    kept_from_default: list[str] | None = Field(
        default=None, description="engine profiles: calibration stages the engine's tables have no rows for, "
                                  "kept from the device's default profile (the fit starts from it)")
    dtypes_kept_from_default: dict[str, list[str]] | None = Field(
        default=None, description="engine profiles: per fitted stage, the dtypes the engine's tables have no "
                                  "rows of, whose values are the default profile's")
    command: str = Field(default=REGENERATE, description="the command that regenerates this file")


class DeviceProfile(_Strict):
    """One shipped profile file."""

    device: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    provenance: Provenance
    efficiency: EfficiencySpec

    @model_validator(mode="after")
    def _basis_fields(self) -> DeviceProfile:
        p = self.provenance
        if p.basis == "transferred" and not p.transferred_from:
            raise ValueError("provenance.transferred_from is required for a transferred profile")
        if p.basis == "calibrated" and p.check is None:
            raise ValueError("provenance.check is required for a calibrated profile")
        return self

    @property
    def basis(self) -> str:
        return basis_text(self.provenance)


def basis_text(p: Provenance) -> str:
    """The one-line basis of a profile's numbers, as every command prints it."""
    if p.basis == "transferred":
        scaled = f", scaled by {p.scaled_by}" if p.scaled_by else ""
        return f"transferred from {p.transferred_from}{scaled}"
    kernels = f" {ENGINE_TITLES.get(p.framework, p.framework)} kernels" if p.framework else ""
    return f"calibrated on {p.data} {p.version}{kernels} ({p.rows:,} rows, {p.date})"


def check_efficiency_choice(value: str | None, where: str = "efficiency") -> str:
    """``value`` (None: calibrated) if it names an efficiency model, else a clear error."""
    if value is None:
        return "calibrated"
    try:
        return known_efficiency(value)
    except ValueError as exc:
        raise InfersimError(f"{where}: {exc}") from None
