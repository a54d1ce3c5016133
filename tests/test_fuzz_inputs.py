"""Property-based fuzzing of every user file and flag (see tests/fuzz_inputs.py for the mutations
and the property). Budget: FUZZ_EXAMPLES cases per kind, fixed, derandomized (the same cases on
every run); benchmarks/fuzz_inputs.py runs many more."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from .fuzz_inputs import command_for, copy_examples, flag_case, mutated_file, run_case, write_case

pytest.importorskip("duckdb")

#: generated cases per kind of file (and for flags): 6 x 170 = 1,020 in all
FUZZ_EXAMPLES = 170
SETTINGS = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    copy_examples(root)
    return root


def _check(outcome):
    assert outcome.problem is None, f"{outcome.kind}: infersim {' '.join(outcome.args)}\n{outcome.problem}"


@pytest.mark.parametrize("kind", ["device", "model", "scenario", "pipeline", "study"])
def test_mutated_files_give_a_sane_answer_or_one_line(kind, workdir):
    @SETTINGS
    @given(case=mutated_file(kind))
    def check(case):
        original, raw, _ = case
        path = write_case(workdir, original, raw)
        args, is_json = command_for(kind, path, workdir)
        _check(run_case(args, is_json))

    check()


@SETTINGS
@given(case=flag_case())
def test_flag_values_give_a_sane_answer_or_one_line(case, tmp_path):
    args, is_json = case
    _check(run_case(args, is_json))
