import pytest

pytest.importorskip("duckdb", reason="the search tests need duckdb: pip install 'infersim[search]'")


@pytest.fixture
def db(tmp_path):
    return tmp_path / "results.duckdb"
