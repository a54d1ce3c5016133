"""``infersim runtimes``: the serving runtimes, what each adds to the kernels, and its sources."""

from __future__ import annotations

import json

import click

from .app import console


def _sizes(sizes: tuple[int, ...]) -> str:
    if not sizes:
        return "-"
    return f"{len(sizes)} sizes, {sizes[0]}..{sizes[-1]}"


@click.command("runtimes")
@click.option("--hardware", "-H", default="h100-sxm", show_default=True,
              help="device whose memory sets the defaults (catalog name or device YAML)")
@click.option("--model", "-m", default="llama-3.1-8b", show_default=True,
              help="model whose context length sets vLLM V0's token cap (catalog name or config.json)")
@click.option("--tp", default=1, show_default=True, type=int, help="tensor-parallel degree (SGLang's memory fraction)")
@click.option("--offline", is_flag=True, help="defaults of an offline benchmark (vLLM's LLM class) instead of a server")
@click.option("--sources", "show_sources", is_flag=True, help="list where every number comes from")
@click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
def runtimes_cmd(hardware: str = "h100-sxm", model: str = "llama-3.1-8b", tp: int = 1, offline: bool = False,
                 show_sources: bool = False, as_json: bool = False) -> None:
    """List the serving runtimes (--runtime NAME): host time per iteration, CUDA-graph padding of
    decode steps, and the scheduler defaults each fills in on a device. See docs/runtime.md."""
    from rich.table import Table

    from ..errors import InfersimError
    from ..hardware import get_device
    from ..models import get_model
    from ..runtime import DEFAULT_RUNTIME, RUNTIMES, get_runtime
    from ..serving.scenario import SchedulerSpec

    if tp < 1:
        raise InfersimError(f"--tp must be >= 1, got {tp}")
    device = get_device(hardware)
    context = get_model(model).max_position_embeddings
    rows = []
    for name in sorted(RUNTIMES):
        rt = get_runtime(name).for_device(device.memory_bytes)
        d = rt.scheduler_defaults(device.memory_bytes, device.name, tp, offline, max_model_len=context)
        sched = {**d.as_dict(), "max_num_batched_tokens": SchedulerSpec.model_validate(d.as_dict()).token_budget}
        rows.append({**rt.describe(), "default": name == DEFAULT_RUNTIME, "scheduler_defaults": sched})
    if as_json:
        click.echo(json.dumps({"hardware": device.name, "model": model, "context_tokens": context, "tp": tp,
                               "offline": offline, "runtimes": rows}, indent=2))
        return
    table = Table(title=f"Serving runtimes on {device.name} (tp={tp}, {'offline' if offline else 'server'}, "
                        f"{model}: {context:,}-token context)",
                  title_justify="left")
    for col in ("runtime", "host per iteration", "overlap", "decode graphs", "scheduler defaults"):
        table.add_column(col)
    for r in rows:
        parts = [(label, r[f"{key}_fixed_s"], r[f"{key}_per_seq_s"])
                 for key, label in (("host", ""), ("schedule", " per scheduler call"), ("async", " asynchronous"))]
        host = "; ".join(f"{fixed * 1e6:.1f} us + {per_seq * 1e6:.2f} us/seq{label}"
                         for label, fixed, per_seq in parts if fixed or per_seq) or "0"
        graphs = _sizes(tuple(r["graph_sizes"])) + (", padded" if r["graph_padding"] and r["graph_sizes"] else "")
        s = r["scheduler_defaults"]
        tokens = s["max_num_batched_tokens"]
        table.add_row(r["name"] + (" (default)" if r["default"] else ""), host, "yes" if r["overlap"] else "no",
                      graphs, f"{s['policy']}, {s['max_num_seqs']} seqs, {tokens} tokens/step, block "
                              f"{s['block_size']}, memory fraction {s['memory_utilization']}")
    console.print(table)
    if show_sources:
        for r in rows:
            console.print(f"[bold]{r['name']}[/bold]: {r['title']}")
            for key, text in r["sources"].items():
                console.print(f"  {key}: {text}", highlight=False)
