"""Accelerator templates: a chip described by its architecture, derived into a catalog device.

A YAML file with a top-level ``template:`` mapping loads wherever a hardware file does
(``--hardware path/to/chip.yaml``); ``infersim hardware derive FILE`` prints its area, power and cost.
"""

from __future__ import annotations

from pydantic import ValidationError

from ...errors import ConfigError
from ..schema import HardwareSpec
from .derive import (ChipReport, derive, die_yield, dies_per_wafer, fused_attention_footprint_bytes,
                     gemm_cycles_output_stationary, peak_flops_per_s, systolic_fold_cycles)
from .spec import AcceleratorTemplate
from .technology import technology


def parse_template(data: dict, origin: object) -> AcceleratorTemplate:
    """The validated template of a loaded YAML mapping (one-line errors naming the field)."""
    if set(data) != {"template"}:
        extra = sorted(set(data) - {"template"})
        raise ConfigError(origin, extra[0], "a template file holds only the 'template' mapping")
    try:
        return AcceleratorTemplate.model_validate(data["template"])
    except ValidationError as err:
        from ..catalog import format_validation_error

        problem = format_validation_error(origin, err)
        raise ConfigError(origin, "template." + problem.field if problem.field else "template",
                          problem.problem) from None


def spec_from_template_data(data: dict, origin: object) -> HardwareSpec:
    """The catalog spec of a template file's mapping; a chip over its own budget is an error."""
    spec, report = derive(parse_template(data, origin), origin)
    if report.violations:
        raise ConfigError(origin, "template.budget", "; ".join(report.violations))
    return spec


__all__ = ["AcceleratorTemplate", "ChipReport", "derive", "die_yield", "dies_per_wafer",
           "fused_attention_footprint_bytes", "gemm_cycles_output_stationary", "parse_template",
           "peak_flops_per_s", "spec_from_template_data", "systolic_fold_cycles", "technology"]
