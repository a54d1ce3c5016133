"""``infersim throughput``: offline throughput of a deployment (every request queued at t = 0)."""

from __future__ import annotations

import json

import click

from .app import console
from .options import check_runtime_flag, deployment_options, runtime_option


@click.command("throughput")
@deployment_options
@click.option("--replicas", default=1, show_default=True, type=int, help="copies of the tp x pp layout")
@click.option("--isl", default=1024, show_default=True, type=int, help="input (prompt) tokens per request")
@click.option("--osl", default=128, show_default=True, type=int, help="output tokens per request")
@click.option("--requests", "-n", default=1000, show_default=True, type=int, help="requests queued at t = 0")
@click.option("--max-num-seqs", type=int, default=None, help="cap on running requests (default: the runtime's)")
@click.option("--max-num-batched-tokens", type=int, default=None,
              help="cap on tokens per step (default: the runtime's)")
@click.option("--seed", default=0, show_default=True, type=int, help="random seed")
@runtime_option
@click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
def throughput_cmd(model: str = "llama-3.1-8b", hardware: str = "h100-sxm", tp: int = 1, pp: int = 1, ep: int = 1,
                   dp_attention: bool = False, weight_dtype: str = "bf16", act_dtype: str = "bf16",
                   kv_dtype: str = "bf16", replicas: int = 1, isl: int = 1024, osl: int = 128,
                   requests: int = 1000, max_num_seqs: int | None = None, max_num_batched_tokens: int | None = None,
                   seed: int = 0, runtime: str | None = None, as_json: bool = False) -> None:
    """Maximum throughput of a deployment at ISL/OSL: every request queued at t = 0, as
    `trtllm-bench throughput` and vLLM's `benchmark_throughput` measure it.

    Prints output tokens/s (per deployment and per GPU), requests/s and the makespan.
    """
    from ..errors import InfersimError
    from ..serving.throughput import offline_throughput

    for flag, value in (("--isl", isl), ("--osl", osl), ("--requests", requests), ("--replicas", replicas)):
        if value < 1:
            raise InfersimError(f"{flag} must be >= 1, got {value}")
    sched = {k: v for k, v in (("max_num_seqs", max_num_seqs), ("max_num_batched_tokens", max_num_batched_tokens))
             if v is not None}
    result = offline_throughput(model, hardware, tp=tp, pp=pp, ep=ep, dp_attention=dp_attention, replicas=replicas,
                                weight_dtype=weight_dtype, activation_dtype=act_dtype, kv_dtype=kv_dtype,
                                runtime=check_runtime_flag(runtime), isl=isl, osl=osl, requests=requests, seed=seed,
                                scheduler=sched)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    from rich.table import Table

    title = (f"{result.model} on {result.devices} x {result.hardware} (tp={tp} pp={pp} replicas={replicas}), "
             f"runtime {result.runtime}: {requests} requests of {isl} in / {osl} out, all queued at t = 0")
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("output tokens/s", f"{result.output_tokens_per_s:,.1f}")
    table.add_row("output tokens/s per GPU", f"{result.output_tokens_per_s_per_gpu:,.1f}")
    table.add_row("total tokens/s (in + out)", f"{result.total_tokens_per_s:,.1f}")
    table.add_row("requests/s", f"{result.requests_per_s:,.3f}")
    table.add_row("makespan", f"{result.makespan_s:,.2f} s")
    table.add_row("mean TTFT", f"{result.mean_ttft_s:,.2f} s")
    table.add_row("mean TPOT", f"{result.mean_tpot_s * 1e3:,.2f} ms")
    s = result.scheduler
    table.add_row("scheduler", f"{s['policy']}, max_num_seqs {s['max_num_seqs']}, "
                               f"max tokens/step {s['max_num_batched_tokens']}, block {s['block_size']}, "
                               f"memory fraction {s['memory_utilization']}")
    console.print(table)
