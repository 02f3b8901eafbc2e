"""fastlogit.dask on a real distributed.LocalCluster (2 worker processes, loopback only).

The cluster is started here (module scope); every result is compared with the
in-memory fastlogit call on the same data.
"""
import os
import signal
import sys
import time

import numpy as np
import pytest

pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402  (a dependency of distributed)
import dask  # noqa: E402
import dask.array as da  # noqa: E402

import fastlogit  # noqa: E402
import fastlogit.dask as fld  # noqa: E402
from fastlogit._train import fit as fit_in_memory  # noqa: E402

# The helpers below run on the workers, which cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


class TaskInputs(distributed.diagnostics.plugin.SchedulerPlugin):
    """Records, for every task sent to a worker, the bytes of its inputs, and
    every worker the scheduler loses."""

    name = "fastlogit-task-inputs"

    def __init__(self):
        self.input_bytes = {}
        self.removed_workers = []
        self.scheduler = None

    async def start(self, scheduler):
        self.scheduler = scheduler

    def transition(self, key, start, finish, *args, **kwargs):
        if finish == "processing":
            ts = self.scheduler.tasks[key]
            self.input_bytes[key] = [dep.get_nbytes() for dep in ts.dependencies]

    def remove_worker(self, scheduler, worker, **kwargs):
        self.removed_workers.append(worker)


@pytest.fixture(scope="module")
def cluster():
    with fld.local_cluster(2, silence_logs=50) as cluster:
        plugin = TaskInputs()
        plugin.scheduler = cluster.scheduler     # add_plugin does not call start()
        cluster.scheduler.add_plugin(plugin)
        cluster.plugin = plugin
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data(client):
    """X (60 000, 6) generated and kept on the workers in irregular row
    blocks, W, b, Y (1, m) and integer sample weights."""
    rng = np.random.default_rng(7)
    m, n = 60_000, 6
    chunks = (9000, 13_000, 1, 7999, 15_000, 15_000)
    X = da.random.default_rng(11).standard_normal(size=(m, n), chunks=(chunks, n)).persist()
    W = rng.normal(size=(n, 1)) / 2
    b = 0.25
    # Labels from the model itself plus noise: not separable, a unique optimum.
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    sw = rng.integers(0, 4, size=m).astype(np.float64)
    return X, W, b, Y, sw


@pytest.fixture(scope="module")
def X_np(data, client):
    return data[0].compute()


def _same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b))


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_scoring_equals_in_memory(client, data, X_np, dtype):
    X, W, b, _, _ = data
    X, X_np, W = X.astype(dtype), X_np.astype(dtype), W.astype(dtype)
    A = fld.forward_pass(X, W, b)
    assert A.shape == (1, X.shape[0]) and A.chunks == ((1,), X.chunks[0])
    assert A.dtype == dtype and A._meta.dtype == dtype and A._meta.ndim == 2
    assert type(A._meta) is np.ndarray
    labels = fld.predict(X, W, b, threshold=0.4)
    assert labels.dtype == np.int64 and labels.chunks == ((1,), X.chunks[0])
    Z = X * 40
    S = fld.sigmoid(Z)
    assert S.chunks == Z.chunks and S.dtype == dtype
    got, got_labels, got_sigmoid = dask.compute(A, labels, S)
    assert got.dtype == dtype
    assert _same(got, fastlogit.forward_pass(X_np, W, b))
    assert _same(got_labels, fastlogit.predict(X_np, W, b, 0.4))
    assert _same(got_sigmoid, fastlogit.sigmoid(X_np * dtype(40)))


def test_column_chunks_are_rechunked_once_with_a_warning(client, data, X_np):
    X, W, b, _, _ = data
    by_columns = X.rechunk((X.chunks[0], (2, 4)))
    with pytest.warns(fld.ColumnChunksWarning, match="chunked along columns"):
        A = fld.forward_pass(by_columns, W, b)
    assert A.chunks == ((1,), X.chunks[0])
    def rechunks(array):
        return {name for name in array.dask.layers if name.startswith("rechunk")}
    assert len(rechunks(A) - rechunks(by_columns)) == 1
    assert _same(A.compute(), fastlogit.forward_pass(X_np, W, b))


def test_score_dataframe_by_column_names(client, data, X_np):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    _, W, b, _, _ = data
    names = [f"f{j}" for j in range(X_np.shape[1])]
    frame = pd.DataFrame(X_np[:5000], columns=names)
    frame["label"] = 1.0
    df = dd.from_pandas(frame[["label"] + names[::-1]], npartitions=3)   # other column order
    P = fld.score_dataframe(df, W, b, names)
    assert P.npartitions == df.npartitions and P.name == "probability"
    assert P.dtype == np.float64 and tuple(P.divisions) == tuple(df.divisions)
    got = P.compute()
    assert got.index.equals(frame.index)
    assert _same(got.to_numpy(), fastlogit.forward_pass(X_np[:5000], W, b)[0])
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not in the DataFrame"):
        fld.score_dataframe(df, W[:1], b, ["nope"])


def test_input_errors_name_the_argument(data):
    X, W, b, Y, _ = data
    with pytest.raises(TypeError, match="X must be a dask.array.Array"):
        fld.forward_pass(np.ones((3, 6)), W, b)
    with pytest.raises(ValueError, match=r"W.*\(5, 1\)"):
        fld.forward_pass(X, W[:5], b)
    with pytest.raises(ValueError, match=r"Y must have shape \(1, 60000\)"):
        fld.cost_and_gradients(X, W, b, da.zeros(7, chunks=7))


# ---------------------------------------------------------------------------
# Cost and gradients
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_cost_and_gradients_bits_equal_the_same_blocks_in_memory(client, data, X_np, weighted):
    X, W, b, Y, sw = data
    kwargs = dict(sample_weight=sw if weighted else None, l2=0.03)
    want = fld.in_memory_cost_and_gradients(X_np, W, b, Y, X.chunks[0], **kwargs)
    # Labels and weights as dask arrays with other chunks: rechunked to X's.
    Y_dask = da.from_array(Y, chunks=(1, 25_000))
    trees = (2, 3, 32)
    results = dask.compute(*[fld.cost_and_gradients(X, W, b, Y_dask, split_every=split_every,
                                                    compute=False, **kwargs)
                             for split_every in trees])
    for split_every, (J, dW, db) in zip(trees, results):
        assert J == want[0] and db == want[2] and _same(dW, want[1]), split_every
        assert dW.shape == (6, 1) and dW.dtype == np.float64
    # And within rounding of the in-memory call with its own blocking.
    J0, dW0, db0 = fastlogit.cost_and_gradients(X_np, W, b, Y, **kwargs)
    assert abs(J - J0) <= 1e-15 * abs(J0)
    assert np.max(np.abs(dW - dW0)) <= 1e-15 * np.max(np.abs(dW0))
    assert abs(db - db0) <= 1e-15 * max(abs(db0), np.max(np.abs(dW0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cost_and_gradients_on_kernel_chunks_equal_the_in_memory_call(client, data, X_np, dtype):
    _, W, b, Y, sw = data
    m, n = X_np.shape
    chunks = fld.kernel_row_chunks(m, n, dtype)
    assert sum(chunks) == m and len(chunks) == 64
    X_mem = X_np.astype(dtype)
    Xk = da.from_array(X_mem, chunks=(chunks, n))
    W = W.astype(dtype)
    cases = [dict(l2=0.5), dict(sample_weight=sw, l2=0.5)]     # unweighted, integer weights
    results = dask.compute(*[fld.cost_and_gradients(Xk, W, b, Y, compute=False, **kwargs)
                             for kwargs in cases])
    for kwargs, (J, dW, db) in zip(cases, results):
        J0, dW0, db0 = fastlogit.cost_and_gradients(X_mem, W, b, Y, **kwargs)
        assert J == J0 and db == db0 and _same(dW, dW0) and dW.dtype == dW0.dtype == dtype


def test_cost_and_gradients_errors_come_back_from_the_workers(client, data):
    X, W, b, Y, sw = data
    bad = Y.copy()
    bad[0, 30_000] = 2.0
    with pytest.raises(ValueError, match=r"Y must hold labels in \[0, 1\]"):
        fld.cost_and_gradients(X, W, b, bad)
    with pytest.raises(ValueError, match="sample_weight must not be all zero"):
        fld.cost_and_gradients(X, W, b, Y, sample_weight=np.zeros(Y.shape[1]))
    with pytest.raises(ValueError, match="l2 must be a finite non-negative float"):
        fld.cost_and_gradients(X, W, b, Y, l2=-1.0)


def test_cost_and_gradients_is_lazy_on_request(client, data, X_np):
    X, W, b, Y, _ = data
    lazy = fld.cost_and_gradients(X, W, b, Y, compute=False)
    assert dask.is_dask_collection(lazy)
    J, dW, db = lazy.compute()
    assert J == fld.in_memory_cost_and_gradients(X_np, W, b, Y, X.chunks[0])[0]


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["l2", "weighted-no-intercept", "lbfgs"])
def test_fit_converges_to_the_in_memory_model(client, data, X_np, case):
    X, W_true, b_true, _, sw = data
    # Labels drawn from a logistic model: a well-defined, unique optimum.
    rng = np.random.default_rng(3)
    Y = (rng.random((1, X_np.shape[0])) < fastlogit.forward_pass(X_np, W_true, b_true)).astype(float)
    if case == "weighted-no-intercept":
        kwargs = dict(sample_weight=sw, fit_intercept=False)
    else:
        kwargs = dict(l2=1e-3)
    solver = "lbfgs" if case == "lbfgs" else "auto"
    got = fld.fit(X, Y, solver=solver, **kwargs)
    for solver in ("lbfgs", "newton"):
        want = fit_in_memory(X_np, Y, solver=solver, **kwargs)
        assert got.converged and want.converged
        scale = np.max(np.abs(want.W))
        assert np.max(np.abs(got.W - want.W)) <= 1e-6 * scale, (got.W, want.W)
        assert abs(got.b - want.b) <= 1e-6 * max(abs(want.b), scale)
        assert abs(got.cost - want.cost) <= 1e-12 * want.cost
    assert got.W.shape == (6, 1) and got.n_evals >= got.n_iter
    # Without a penalty one more pass checks for separation.
    assert got.n_passes == got.n_evals + ("l2" not in kwargs)
    assert got.solver == ("lbfgs" if case == "lbfgs" else "newton")
    if case != "lbfgs":
        assert got.n_passes <= 10       # Newton: a handful of rounds of tasks
    if case == "weighted-no-intercept":
        assert got.b == 0.0


@pytest.fixture(scope="module")
def breast_cancer():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return X, y.astype(np.float64)


@pytest.mark.parametrize("rows_per_block", [150, 8], ids=["4-blocks", "72-blocks"])
@pytest.mark.parametrize("scaled", [False, True], ids=["unscaled", "scaled"])
def test_newton_on_dask_reaches_the_in_memory_optimum_in_few_passes(client, breast_cancer, scaled,
                                                                    rows_per_block):
    X_np, y = breast_cancer
    if scaled:
        X_np = (X_np - X_np.mean(axis=0)) / X_np.std(axis=0)
    l2 = 1 / X_np.shape[0]                                  # C = 1
    # 72 blocks: more than one group of COMBINE_GROUP (64) block sums.
    X = da.from_array(X_np, chunks=(rows_per_block, 30))
    got = fld.fit(X, y, l2=l2)
    want = fit_in_memory(X_np, y, l2=l2, tol=1e-12, solver="newton")
    assert got.converged and got.solver == "newton"
    assert np.max(np.abs(got.W - want.W)) <= 1e-6 * np.max(np.abs(want.W))
    assert abs(got.b - want.b) <= 1e-6 * max(abs(want.b), np.max(np.abs(want.W)))
    # Unscaled, L-BFGS needed hundreds of passes (and did not converge).
    assert got.n_passes <= 15, got.n_passes
    # The sums are added in groups fixed by the row chunks: the bits do not
    # depend on the fan-in of the tree of tasks.
    for split_every in ((2, 3) if X.numblocks[0] < 10 else (5,)):
        other = fld.fit(X, y, l2=l2, split_every=split_every)
        assert _same(other.W, got.W) and other.b == got.b and other.n_passes == got.n_passes


def test_newton_on_dask_warns_once_on_separable_data(client):
    rng = np.random.default_rng(0)
    X_np = np.concatenate([rng.normal(size=(200, 3)) + 3, rng.normal(size=(200, 3)) - 3])
    y = np.repeat([1.0, 0.0], 200)
    with pytest.warns(fastlogit.ConvergenceWarning) as record:
        got = fld.fit(da.from_array(X_np, chunks=(100, 3)), y)
    assert len(record) == 1 and "linearly separable" in str(record[0].message)
    assert not got.converged and "separable" in got.message
    assert got.n_passes <= 15
    pytest.importorskip("sklearn")
    with pytest.warns(fastlogit.ConvergenceWarning) as record:
        fastlogit.LogisticRegression(penalty=None).fit(da.from_array(X_np, chunks=(100, 3)), y)
    assert len(record) == 1 and "linearly separable" in str(record[0].message)


def test_newton_on_dask_reports_bad_labels(client, data):
    X, W, b, Y, _ = data
    bad = Y.copy()
    bad[0, 30_000] = 2.0
    with pytest.raises(ValueError, match=r"Y must hold labels in \[0, 1\]"):
        fld.fit(X, bad, l2=1e-2)


def test_estimator_on_dask_maps_labels_and_C(client, data, X_np):
    pytest.importorskip("sklearn")
    X, W_true, b_true, _, _ = data
    rng = np.random.default_rng(5)
    positive = rng.random(X_np.shape[0]) < fastlogit.forward_pass(X_np, W_true, b_true)[0]
    y = np.where(positive, "yes", "no")
    model = fastlogit.LogisticRegression(C=0.5, tol=1e-8).fit(X, y)
    want = fit_in_memory(X_np, positive.astype(float), l2=1 / (0.5 * X_np.shape[0]))
    assert model.classes_.tolist() == ["no", "yes"]
    assert np.max(np.abs(model.coef_[0] - want.W[:, 0])) <= 1e-6 * np.max(np.abs(want.W))
    with pytest.raises(ValueError, match="exactly two classes"):
        fastlogit.LogisticRegression().fit(
            X, np.where(positive, "yes", np.where(X_np[:, 0] > 0, "no", "maybe")))


def test_estimator_on_dask_with_unknown_chunk_sizes(client, breast_cancer):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X_np, y = breast_cancer
    frame = pd.DataFrame(X_np, columns=[f"f{j}" for j in range(30)])
    frame["y"] = y
    df = dd.from_pandas(frame, npartitions=3)
    X = df.drop(columns="y").to_dask_array()            # row-chunk sizes unknown (nan)
    assert any(np.isnan(c) for c in X.chunks[0])
    model = fastlogit.LogisticRegression(C=1.0, tol=1e-8).fit(X, df["y"].to_dask_array())
    want = fastlogit.LogisticRegression(C=1.0, tol=1e-8).fit(X_np, y)
    np.testing.assert_allclose(model.coef_, want.coef_, rtol=0,
                               atol=1e-6 * np.abs(want.coef_).max())


# ---------------------------------------------------------------------------
# Data stays distributed
# ---------------------------------------------------------------------------

def test_no_task_receives_more_than_one_block_of_X(client, cluster, data, tmp_path):
    X, W, b, Y, sw = data
    X = X.persist()
    distributed.wait(X)
    block_bytes = max(X.chunks[0]) * X.shape[1] * X.dtype.itemsize
    total_bytes = X.nbytes
    records = cluster.plugin.input_bytes
    records.clear()
    fld.forward_pass(X, W, b).compute()
    fld.cost_and_gradients(X, W, b, da.from_array(Y, chunks=(1, 20_000)), sample_weight=sw)
    fld.fit(X, Y, l2=1e-2)
    assert len(records) > 3 * X.numblocks[0]          # the plugin saw every task
    # One X block plus its labels and weights (8 bytes a row each) at most.
    limit = block_bytes + 2 * max(X.chunks[0]) * 8
    worst = max(sum(inputs) for inputs in records.values())
    assert worst <= limit < total_bytes / 2, (worst, limit, total_bytes)
    # Blocks of X that are in memory are never gathered into one task:
    for key, inputs in records.items():
        assert sum(n >= 0.9 * block_bytes for n in inputs) <= 1, key


def test_no_task_receives_more_than_one_group_of_block_sums(client, cluster, data, X_np):
    """150 row blocks: their Newton sums are added 64 at a time (3 groups, then
    the 3 group sums), so no task holds more than COMBINE_GROUP rows of
    partials, whatever split_every; and the bits do not depend on it."""
    X, W, b, Y, _ = data
    X = X.rechunk((400, 6)).persist()
    distributed.wait(X)
    blocks, n = X.numblocks[0], X.shape[1]
    assert blocks == 150
    width = 4 + n + (n + 1) * (n + 2) // 2                   # Newton's row of sums
    bound = fld.COMBINE_GROUP * width * 8
    records = cluster.plugin.input_bytes
    fits = {}
    for split_every in (None, 5, 1000):
        records.clear()
        fits[split_every] = fld.fit(X, Y, l2=1e-2, split_every=split_every)
        sums = {key: inputs for key, inputs in records.items()
                if "-newton-sum-" in str(key) or "-newton-gather-" in str(key)}
        passes = fits[split_every].n_passes
        # Each pass: one task per group (3), then one for the 3 group sums.
        assert sum("-newton-sum-" in str(key) for key in sums) == 4 * passes
        worst = max(sum(inputs) for inputs in sums.values())
        assert 0.9 * bound <= worst <= bound < blocks * width * 8 / 2, (worst, bound, split_every)
    for other in (5, 1000):
        assert _same(fits[other].W, fits[None].W) and fits[other].b == fits[None].b
    # The same bits as the in-memory twin of the grouped combination.
    want = fld.in_memory_cost_and_gradients(X_np, W, b, Y, X.chunks[0], l2=0.1)
    for split_every in (2, 7, None):
        J, dW, db = fld.cost_and_gradients(X, W, b, Y, l2=0.1, split_every=split_every)
        assert J == want[0] and db == want[2] and _same(dW, want[1]), split_every


def test_combine_in_groups_adds_64_rows_at_a_time():
    from fastlogit._kernels import combine_partials

    rng = np.random.default_rng(5)
    P = rng.normal(size=(64 * 64 + 3, 4)) * 10.0 ** rng.integers(-8, 8, size=(64 * 64 + 3, 1))
    assert _same(fld.combine_in_groups(P[:64]), combine_partials(P[:64]))
    level1 = np.stack([combine_partials(P[lo:lo + 64]) for lo in range(0, len(P), 64)])
    level2 = np.stack([combine_partials(level1[lo:lo + 64]) for lo in range(0, len(level1), 64)])
    assert level1.shape[0] == 65 and level2.shape[0] == 2
    assert _same(fld.combine_in_groups(P), combine_partials(level2))
    assert np.allclose(fld.combine_in_groups(P), P.sum(axis=0), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="P must have shape"):
        fld.combine_in_groups(np.zeros(3))


def test_score_parts_reads_a_folder_of_parts_as_one_data_set(client, cluster, data, X_np, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa
    from fastlogit.model_io import Model

    _, W, b, _, _ = data
    names = [f"f{j}" for j in range(6)]
    parquet_in, npy_in = tmp_path / "pq", tmp_path / "npy"
    parquet_in.mkdir()
    npy_in.mkdir()
    bounds = [0, 7000, 7001, 20_000, 33_333, 60_000]
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        table = {name: X_np[lo:hi, j] for j, name in enumerate(names)}
        table["id"] = np.arange(lo, hi)
        pq.write_table(pa.table(table), parquet_in / f"part-{k:03d}.parquet")
        np.save(npy_in / f"part-{k:03d}.npy", X_np[lo:hi])
    want = fastlogit.forward_pass(X_np, W, b)[0]
    # Features in another order than the files: the columns are read in the
    # model's order (the same numbers summed in another order).
    model = Model(names[::-1], W[::-1], b)
    want_reordered = fastlogit.forward_pass(X_np[:, ::-1], W[::-1], b)[0]
    summary = fld.score_parts(model, parquet_in, tmp_path / "out-pq", threshold=0.5,
                              scheduler=cluster.scheduler_address)
    assert summary["rows"] == 60_000 and summary["parts"] == 5 and summary["workers"] == 2
    out = sorted((tmp_path / "out-pq").iterdir())
    assert [p.name for p in out] == [f"part-{k:03d}.parquet" for k in range(5)]
    got = np.concatenate([pq.read_table(p)["probability"].to_numpy() for p in out])
    labels = np.concatenate([pq.read_table(p)["label"].to_numpy() for p in out])
    assert _same(got, want_reordered) and _same(labels, want_reordered >= 0.5)

    fld.score_parts((W, b), npy_in, tmp_path / "out-npy")
    got = np.concatenate([np.load(p) for p in sorted((tmp_path / "out-npy").iterdir())])
    assert _same(got, want)

    parts = fld.read_parts(parquet_in, label="id")
    assert parts.features == names and parts.X.chunks[0] == (7000, 1, 12_999, 13_333, 26_667)
    assert _same(parts.Y.compute(), np.arange(60_000))

    # Training from the parts: labels from a column, C as on the command line.
    labels = (np.random.default_rng(9).random(60_000)
              < fastlogit.forward_pass(X_np, W, b)[0]).astype(np.float64)
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        table = {name: X_np[lo:hi, j] for j, name in enumerate(names)}
        table["outcome"] = labels[lo:hi]
        pq.write_table(pa.table(table), parquet_in / f"part-{k:03d}.parquet")
    res, features, rows = fld.fit_parts(parquet_in, "outcome", C=2.0)
    want = fit_in_memory(X_np, labels, l2=1 / (2.0 * 60_000))
    assert features == names and rows == 60_000
    assert np.max(np.abs(res.W - want.W)) <= 1e-6 * np.max(np.abs(want.W))


def test_scheduler_option_is_checked():
    with pytest.raises(ValueError, match="positive worker count"):
        with fld.scheduler_client("local:0"):
            pass


def test_local_cluster_starts_while_the_default_dashboard_port_is_taken():
    # A notebook's cluster often holds 8787; `--scheduler local:N` must neither fail nor warn
    # (the suite turns warnings into errors) and must listen on loopback only.
    import socket

    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        except OSError:
            pass                                   # already taken by someone else: same test
        with fld.scheduler_client("local:1") as client:
            assert client.submit(abs, -3).result() == 3
            http = client.cluster.scheduler.http_server
    assert http.address == "127.0.0.1" and http.port != 8787


def test_estimator_accepts_dask_inputs(client, data, X_np):
    pytest.importorskip("sklearn")
    X, W, b, Y, _ = data
    y = Y[0]
    dask_model = fastlogit.LogisticRegression(C=0.5, tol=1e-10, max_iter=500).fit(X, y)
    memory_model = fastlogit.LogisticRegression(C=0.5, tol=1e-10, max_iter=500).fit(X_np, y)
    np.testing.assert_allclose(dask_model.coef_, memory_model.coef_, rtol=1e-6,
                               atol=1e-6 * np.abs(memory_model.coef_).max())
    np.testing.assert_allclose(dask_model.intercept_, memory_model.intercept_, rtol=1e-6,
                               atol=1e-6)
    assert list(dask_model.classes_) == [0.0, 1.0]


def test_command_line_trains_and_scores_a_folder_on_a_scheduler(cluster, data, X_np, tmp_path):
    from conftest import run_python

    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    _, W, b, _, _ = data
    names = [f"f{j}" for j in range(6)]
    labels = (np.random.default_rng(3).random(X_np.shape[0])
              < fastlogit.forward_pass(X_np, W, b)[0]).astype(np.float64)
    parts = tmp_path / "parts"
    parts.mkdir()
    bounds = [0, 25_000, 60_000]
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        table = {name: X_np[lo:hi, j] for j, name in enumerate(names)}
        table["outcome"] = labels[lo:hi]
        pq.write_table(pa.table(table), parts / f"part-{k}.parquet")
    address = cluster.scheduler_address

    def run(*args):
        return run_python(["-m", "fastlogit", *args], cwd=tmp_path, timeout=300)

    trained = run("train", str(parts), "--target", "outcome", "-C", "2",
                  "--scheduler", address, "-o", str(tmp_path / "model.json"))
    assert trained.returncode == 0, trained.stderr
    scored = run("score", str(parts), "--model", str(tmp_path / "model.json"),
                 "-o", str(tmp_path / "scores"), "--scheduler", address)
    assert scored.returncode == 0, scored.stderr
    assert "scored 60,000 rows in 2 parts" in scored.stderr

    from fastlogit.model_io import load_model

    model = load_model(tmp_path / "model.json")
    want_fit = fit_in_memory(X_np, labels, l2=1 / (2.0 * 60_000))
    assert np.max(np.abs(model.W - want_fit.W)) <= 1e-6 * np.max(np.abs(want_fit.W))
    got = np.concatenate([pq.read_table(tmp_path / "scores" / f"part-{k}.parquet")["probability"]
                          .to_numpy() for k in range(2)])
    assert _same(got, fastlogit.forward_pass(X_np, model.W, model.b)[0])


# ---------------------------------------------------------------------------
# Fault tolerance (last: it restarts a worker)
# ---------------------------------------------------------------------------

def _slow_copy(block, seconds):
    time.sleep(seconds)
    return block.copy()


def test_scoring_survives_a_killed_worker(client, cluster, data, X_np):
    X, W, b, _, _ = data
    X = X.rechunk((2000, 6))                        # 30 blocks
    slow = X.map_blocks(_slow_copy, 0.1, dtype=X.dtype)
    A = fld.forward_pass(slow, W, b)
    prefix = A.name
    removed_before = len(cluster.plugin.removed_workers)
    future = client.compute(A)
    scheduler = cluster.scheduler

    def finished_blocks():
        return [ts for key, ts in list(scheduler.tasks.items())
                if isinstance(key, tuple) and key[0] == prefix and ts.state == "memory"]

    deadline = time.monotonic() + 30
    while len(finished_blocks()) < 4:
        assert time.monotonic() < deadline, "the scoring job did not start"
        time.sleep(0.02)
    victim = next(iter(finished_blocks()[0].who_has)).address
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    assert not future.done()                        # killed in the middle of the job
    got = future.result(timeout=60)
    assert len(cluster.plugin.removed_workers) > removed_before
    assert _same(got, fastlogit.forward_pass(X_np, W, b))
    client.wait_for_workers(2, timeout=60)
