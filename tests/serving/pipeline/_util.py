"""Small pipeline scenarios for the tests (llama-3.1-8b on H100 unless stated)."""

from __future__ import annotations

import copy

from infersim.serving.pipeline.spec import validate_pipeline

LLM = {"kind": "llm", "model": "llama-3.1-8b", "hardware": "h100-sxm"}

WORKLOAD = {
    "requests": 60,
    "arrival": {"process": "poisson", "rate": 6.0},
    "input_tokens": {"dist": "uniform", "min": 100, "max": 1500},
    "output_tokens": {"dist": "uniform", "min": 2, "max": 80},
}


def llm(**changes) -> dict:
    out = copy.deepcopy(LLM)
    out.update(changes)
    return out


def pd_data(**changes) -> dict:
    data = {
        "name": "pd", "seed": 5,
        "engines": {"prefill": llm(scheduler={"policy": "chunked", "max_num_batched_tokens": 2048}),
                    "decode": llm()},
        "graph": [{"name": "prefill", "kind": "llm_prefill", "engine": "prefill"},
                  {"name": "decode", "kind": "llm_decode", "engine": "decode"}],
        "workload": copy.deepcopy(WORKLOAD),
    }
    data.update(changes)
    return data


def pipeline(data: dict):
    return validate_pipeline(data, "<test>")


def spaced(n: int, prompt: int, output: int, gap_s: float = 100.0) -> dict:
    """A workload of ``n`` identical requests far apart (each runs alone)."""
    return {"requests": n, "arrival": {"process": "constant", "rate": 1.0 / gap_s},
            "input_tokens": {"dist": "fixed", "value": prompt}, "output_tokens": {"dist": "fixed", "value": output}}
