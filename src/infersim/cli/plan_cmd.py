"""``infersim plan``: the best aggregated and disaggregated deployments under a GPU budget and SLOs."""

from __future__ import annotations

import json
import sys

import click

from ..errors import ConfigError, InfersimError
from ..search.store import DEFAULT_DB
from .options import check_moe_routing_flag, moe_routing_option, runtime_option

#: question field -> the flag that sets it (errors name the flag)
FLAGS = {"model": "--model", "device": "--hardware", "gpus": "--gpus", "input_tokens": "--isl",
         "output_tokens": "--osl", "ttft_s": "--ttft", "tpot_s": "--tpot", "percentile": "--percentile",
         "modes": "--mode", "precisions": "--precision", "kv_link": "--kv-link", "top_k": "--top-k",
         "runtime": "--runtime"}


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _ints(flag: str, value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in _csv(value))
    except ValueError:
        raise InfersimError(f"{flag}: expected comma-separated integers, got '{value}'") from None
    if not out or min(out) < 1:
        raise InfersimError(f"{flag}: expected integers >= 1, got '{value}'")
    return out


@click.command("plan")
@click.option("--model", "-m", default="llama-3.1-70b", show_default=True, help="catalog name or config.json")
@click.option("--hardware", "-H", default="h100-sxm", show_default=True, help="catalog name or device YAML")
@click.option("--gpus", default=16, show_default=True, type=int, help="total GPU budget")
@click.option("--isl", default=2048, show_default=True, type=int, help="input (prompt) tokens per request")
@click.option("--osl", default=256, show_default=True, type=int, help="output tokens per request")
@click.option("--ttft", default=1000.0, show_default=True, type=float, help="TTFT SLO in ms")
@click.option("--tpot", default=60.0, show_default=True, type=float, help="TPOT SLO in ms")
@click.option("--percentile", default=90.0, show_default=True, type=float,
              help="the percentile both SLOs apply to")
@click.option("--mode", "modes", default=None,
              help="serving modes, comma-separated: aggregated, disaggregated, afd (default: the first two; "
                   "--moe adds afd)")
@click.option("--moe", is_flag=True, help="add attention-FFN disaggregation (afd) candidates (MoE models)")
@click.option("--precision", "precisions", default="bf16,fp8", show_default=True,
              help="precisions to try (weights, activations and KV cache alike), comma-separated")
@click.option("--batch", "batches", default="64,128,256,512", show_default=True, help="batch caps to try")
@click.option("--tokens", "budgets", default="1024,2048,4096,8192", show_default=True,
              help="chunked-prefill token budgets to try (aggregated)")
@click.option("--kv-link", default="scale_out", show_default=True, type=click.Choice(["scale_out", "scale_up"]),
              help="the link disaggregated pools move the KV cache over")
@click.option("--top-k", default=5, show_default=True, type=int, help="static front points checked by simulation")
@click.option("--no-simulate", is_flag=True, help="static pass only")
@click.option("--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
              help="results database (both stages are stored)")
@click.option("--no-store", is_flag=True, help="do not write the results database")
@click.option("--json", "as_json", is_flag=True, help="print the answer as JSON")
@runtime_option
@moe_routing_option
def plan_cmd(model, hardware, gpus, isl, osl, ttft, tpot, percentile, modes, moe, precisions, batches, budgets,
             kv_link, top_k, no_simulate, db, no_store, as_json, runtime=None, moe_routing=None) -> None:
    """Which deployment gives the most tokens/s per GPU under the budget and SLOs?

    Runs the load-aware static model over every candidate (parallelism per pool,
    batch caps, token budgets, precision, P:D worker counts for the budget; afd
    for MoE models with --moe), then the discrete-event simulator with a capacity
    search on the static top-k. Prints the best aggregated and disaggregated
    deployments and the simulated tails.
    """
    from ..search.plan import PlanQuestion, static_pass, store_static

    mode_list = _csv(modes) if modes else ("aggregated", "disaggregated") + (("afd",) if moe else ())
    if moe and "afd" not in mode_list:
        mode_list = (*mode_list, "afd")
    q = PlanQuestion(model=model, device=hardware, gpus=gpus, input_tokens=isl, output_tokens=osl,
                     ttft_s=ttft / 1e3, tpot_s=tpot / 1e3, percentile=percentile, modes=mode_list,
                     precisions=_csv(precisions), batch_caps=_ints("--batch", batches),
                     token_budgets=_ints("--tokens", budgets), kv_link=kv_link, top_k=top_k, runtime=runtime,
                     moe_routing=moe_routing and check_moe_routing_flag(moe_routing))
    try:
        result, configs, columns = static_pass(q)
    except ConfigError as exc:
        if exc.path == "plan":
            raise InfersimError(f"{FLAGS.get(exc.field, exc.field)}: {exc.problem}") from None
        raise
    if not no_store:
        result.stored.append(store_static(q, configs, columns, db))
    if not no_simulate and top_k > 0:
        from ..search.plan_check import check_top

        check_top(result, None if no_store else db)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
        return
    from ..report.plan_view import render_plan
    from .app import console

    render_plan(console, result)
