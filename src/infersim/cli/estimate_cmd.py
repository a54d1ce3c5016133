"""``infersim estimate``: the static latency / throughput / memory estimate."""

from __future__ import annotations

import json

import click

from .app import console
from .options import (COUNT, FRACTION, NONNEG, Real, accuracy_record_option, check_moe_routing_flag, check_runtime_flag,
                      deployment_options, moe_routing_option,
                      efficiency_option, html_option, parse_transform_flags, runtime_option, transform_option,
                      with_accuracy_record, write_html_report)


@click.command("estimate")
@deployment_options
@click.option("--batch", "-b", default=16, show_default=True, type=COUNT, help="concurrent requests")
@click.option("--input", "input_tokens", default=1024, show_default=True, type=COUNT, help="prompt tokens")
@click.option("--output", "output_tokens", default=256, show_default=True, type=COUNT, help="generated tokens")
@click.option("--attention", type=click.Choice(["fused", "unfused"]), default="fused", show_default=True,
              help="attention kernel: FlashAttention-style fused, or logits/softmax/attend")
@click.option("--moe-imbalance", default=1.0, show_default=True, type=Real(min=1.0),
              help="extra load factor on the busiest expert device (>= 1)")
@moe_routing_option
@click.option("--memory-utilization", default=0.90, show_default=True, type=FRACTION,
              help="fraction of device memory usable (vLLM's gpu_memory_utilization)")
@click.option("--max-prefill-tokens", default=8192, show_default=True, type=COUNT,
              help="token cap of one prefill step (vLLM max_num_batched_tokens)")
@click.option("--top", default=8, show_default=True, type=NONNEG, help="operators to list")
@click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
@transform_option
@accuracy_record_option
@runtime_option
@html_option
@efficiency_option
def estimate_cmd(model: str = "llama-3.1-8b", hardware: str = "h100-sxm", tp: int = 1, pp: int = 1,
                 ep: int = 1, dp_attention: bool = False, weight_dtype: str = "bf16", act_dtype: str = "bf16", kv_dtype: str = "bf16",
                 batch: int = 16, input_tokens: int = 1024, output_tokens: int = 256,
                 attention: str = "fused", moe_imbalance: float = 1.0, moe_routing: str | None = None,
                 memory_utilization: float = 0.90,
                 max_prefill_tokens: int = 8192, top: int = 8, as_json: bool = False,
                 transforms: tuple = (), accuracy_record: str | None = None, runtime: str | None = None,
                 html_path: str | None = None, efficiency: str | None = None) -> None:
    """Latency, throughput, memory and top operators of a batch on one replica.

    Defaults: Llama-3.1-8B on one H100 SXM, batch 16, 1024 input / 256 output tokens.
    """
    from ..errors import InfersimError
    from ..hardware import get_device
    from ..models import get_model
    from ..perf.estimate import estimate
    from ..perf.graph import GraphOptions
    from ..perf.parallel import Parallelism, Precision
    from ..report.estimate_view import render_estimate

    if moe_imbalance < 1.0:
        raise InfersimError(f"--moe-imbalance must be >= 1, got {moe_imbalance}")
    if not 0.0 < memory_utilization <= 1.0:
        raise InfersimError(f"--memory-utilization must be in (0, 1], got {memory_utilization}")
    from ..runtime import get_runtime

    chosen = with_accuracy_record(parse_transform_flags(transforms), accuracy_record)
    rt = get_runtime(check_runtime_flag(runtime))
    cfg = get_model(model)
    device = get_device(hardware, efficiency=efficiency)
    par = Parallelism(tp=tp, pp=pp, ep=ep, dp_attention=dp_attention)
    prec = Precision(weight_dtype, act_dtype, kv_dtype)
    options = GraphOptions(attention_impl=attention, moe_imbalance=moe_imbalance, transforms=chosen,
                           moe_routing=check_moe_routing_flag(moe_routing))
    est = estimate(
        cfg, device, par, prec, batch=batch, input_tokens=input_tokens, output_tokens=output_tokens,
        options=options, memory_utilization=memory_utilization, max_prefill_tokens=max_prefill_tokens, top=top,
        runtime=rt,
    )
    data = est.to_dict()
    if est.fits and (as_json or html_path):
        from ..report.html.estimate_html import roofline_data

        data["roofline"] = roofline_data(cfg, device, par, prec, batch=batch, input_tokens=input_tokens,
                                         output_tokens=output_tokens, options=options,
                                         max_prefill_tokens=max_prefill_tokens)
    if html_path:
        write_html_report("estimate", data, html_path)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        render_estimate(est, console)
    if not est.fits:
        raise SystemExit(1)
