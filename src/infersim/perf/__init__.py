"""Operator-level cost model: operator graphs, roofline with efficiency, collectives, memory."""

from .estimate import Estimate, estimate, step_costs
from .graph import GraphOptions, build_step_graph
from .memory import MemoryBreakdown, memory_breakdown, weight_bytes_per_device
from .parallel import Parallelism, Precision
from .roofline import OpCosts, cost_ops
from .shape import StepShape

__all__ = [
    "Estimate", "GraphOptions", "MemoryBreakdown", "OpCosts", "Parallelism", "Precision", "StepShape",
    "build_step_graph", "cost_ops", "estimate", "memory_breakdown", "step_costs", "weight_bytes_per_device",
]
