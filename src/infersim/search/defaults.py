"""The built-in study that `infersim search` runs with no arguments.

Llama-3.1-70B for a chat workload (1024 in / 256 out, 20 requests/s) on four
accelerators, TP 1-8, 1-8 replicas, max batch 1-256, chunked-prefill budget
512-8192 tokens, bf16 or fp8 weights; SLOs TTFT p99 <= 1 s and TPOT p90 <= 60 ms
and enough replicas for the load; minimizing $ per million output tokens and
maximizing goodput per device. Exhaustive grid over the static model
(5,760 points, about a second). ``examples/studies/llama70b-chat.yaml`` is the same study as a file.
"""

from __future__ import annotations

from .study import Study, study_from_dict

DEFAULT_STUDY: dict = {
    "name": "llama70b-chat",
    "description": "Which accelerator, how many, which layout and batch limits serve Llama-3.1-70B chat "
                   "within SLOs at the lowest cost per token",
    "workload": "chat",
    "evaluator": "static",
    "space": {
        "model": "llama-3.1-70b",
        "device": ["h100-sxm", "h200", "b200", "mi300x"],
        "tp": [1, 2, 4, 8],
        "replicas": {"type": "int", "low": 1, "high": 8, "log": True},
        "max_batch": {"type": "int", "low": 1, "high": 256, "log": True},
        "max_prefill_tokens": [512, 1024, 2048, 4096, 8192],
        "weight_dtype": ["bf16", "fp8"],
    },
    "slo": {"ttft_p99_s": 1.0, "tpot_p90_s": 0.060},
    "constraints": ["utilization <= 1.0"],
    "objectives": [{"min": "usd_per_million_output_tokens"}, {"max": "goodput_tokens_per_s_per_device"}],
    "optimizer": "grid",
    "seed": 0,
}


def default_study(efficiency: str | None = None) -> Study:
    data = DEFAULT_STUDY if efficiency is None else {**DEFAULT_STUDY, "efficiency": efficiency}
    return study_from_dict(data, "<built-in default study>")
