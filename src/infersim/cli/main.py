"""Entry point: registers every command on the root group."""

from __future__ import annotations

from .app import cli
from .catalog_cmd import hardware_group, models_group
from .compress_cmd import compress_cmd, compress_study_cmd
from .derive_cmd import derive_cmd
from .estimate_cmd import estimate_cmd
from .fidelity_cmd import calibrate_cmd, fidelity_cmd, profile_cmd
from .pipeline_cmd import pipeline_cmd, pipeline_study_cmd
from .plan_cmd import plan_cmd
from .report_cmd import report_cmd
from .search_cmd import results_group, search_cmd
from .simulate_cmd import simulate_cmd, sweep_rate_cmd
from .transforms_cmd import transforms_cmd
from .runtime_cmd import runtimes_cmd
from .throughput_cmd import throughput_cmd
from .validate_cmd import validate_cmd

cli.add_command(estimate_cmd)
cli.add_command(hardware_group)
hardware_group.add_command(derive_cmd)
cli.add_command(models_group)
cli.add_command(simulate_cmd)
cli.add_command(sweep_rate_cmd)
cli.add_command(pipeline_cmd)
cli.add_command(pipeline_study_cmd)
cli.add_command(search_cmd)
cli.add_command(fidelity_cmd)
cli.add_command(calibrate_cmd)
cli.add_command(profile_cmd)
cli.add_command(results_group)
cli.add_command(transforms_cmd)
cli.add_command(plan_cmd)
cli.add_command(throughput_cmd)
cli.add_command(runtimes_cmd)
cli.add_command(report_cmd)
cli.add_command(compress_cmd)
cli.add_command(compress_study_cmd)
cli.add_command(validate_cmd)


def main() -> None:
    cli(prog_name="infersim")


if __name__ == "__main__":
    main()
