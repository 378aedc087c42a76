"""The training callbacks and the diagnostics they record and print."""

import io

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import ProgressBar
from skorch.history import History

from skhash import BinaryHashEncoder
from skhash._objective import TERM_NAMES
from skhash.callbacks import (
    HIST_RANGE,
    CosineLRSchedule,
    HypercubeDiagnostics,
    OutputScaleSchedule,
    TrainingLog,
    code_statistics,
    histogram_counts,
    progress_bar_wanted,
    sparkline,
    training_steps,
)
from tests.helpers import FAST


def test_histogram_counts_is_mirror_symmetric():
    values = np.array([-1.0, -0.75, -0.5, -0.2, 0.5, 0.75, 1.0, 1.0])
    counts = histogram_counts(values)
    assert counts.sum() == len(values)
    # edges count in the bin nearer to 0, so mirrored values give mirrored counts
    np.testing.assert_array_equal(histogram_counts(-values), counts[::-1])
    # the vertices land in the bins just inside them: [-1, -0.75) and (0.75, 1]
    np.testing.assert_array_equal(histogram_counts([-1.0, 1.0]), [0, 0, 1] + [0] * 6 + [1, 0, 0])


def test_histogram_counts_skips_values_out_of_range_and_nan():
    counts = histogram_counts([-2.0, 2.0, np.nan, 0.1], bins=4, value_range=(-1, 1))
    np.testing.assert_array_equal(counts, [0, 0, 1, 0])


def test_sparkline_spikes_at_the_vertices():
    line = sparkline(np.r_[-np.ones(50), np.ones(50), np.zeros(5)])
    assert len(line) == 12
    assert line[2] == line[9] == "█"
    assert line[:2] == line[10:] == "  "
    assert sparkline([]) == " " * 12


def test_code_statistics_of_perfect_codes():
    rng = np.random.default_rng(0)
    codes = rng.choice([-1.0, 1.0], size=(4000, 8))
    stats = code_statistics(codes)
    assert stats["vertex_dist"] == 0
    assert 0.45 < stats["ones_min"] <= stats["ones_max"] < 0.55
    assert stats["max_corr"] < 0.1
    assert sum(stats["hist_counts"]) == codes.size
    assert stats["hist"] == sparkline(codes)
    assert code_statistics(codes[:, :1])["max_corr"] == 0.0


def test_diagnostics_in_history(fitted):
    h = fitted.history_
    for row in h:
        counts = row["hist_counts"]
        assert len(counts) == 12 and all(isinstance(c, int) for c in counts)
        assert sum(counts) > 0 and counts[0] == counts[-1] == 0  # tanh never leaves [-1, 1]
        assert len(row["hist"]) == 12
    # later epochs put a larger share at the vertices
    first, last = np.array(h[0, "hist_counts"]), np.array(h[-1, "hist_counts"])
    assert (last[[2, 9]].sum() / last.sum()) > (first[[2, 9]].sum() / first.sum())


def test_schedules_follow_the_training_steps(fitted):
    """beta rises geometrically and lr falls along a cosine, step by step, over the budget."""
    h = fitted.history_
    assert fitted.n_steps_ == sum(h[:, "train_batch_count"]) == training_steps(fitted.net_)
    last_step = np.cumsum(h[:, "train_batch_count"]) - 1  # recorded: each epoch's last step
    total = fitted.n_steps_
    expected_beta = fitted.beta_max ** (last_step / (total - 1))
    np.testing.assert_allclose(h[:, "beta"], expected_beta, rtol=1e-6)
    assert h[-1, "beta"] == pytest.approx(fitted.beta_max)
    expected_lr = fitted.lr * (1 + np.cos(np.pi * last_step / total)) / 2
    np.testing.assert_allclose(h[:, "lr"], expected_lr, rtol=1e-6)


def test_max_steps_sets_the_budget_whatever_the_epochs(digits):
    X, _ = digits
    # 300 rows in batches of 256: 2 steps per epoch; 5 steps = 2 full epochs + 1 step
    enc = BinaryHashEncoder(random_state=0, **{**FAST, "max_steps": 5}).fit(X[:300])
    assert enc.n_steps_ == 5
    assert list(enc.history_[:, "train_batch_count"]) == [2, 2, 1]
    assert enc.history_[-1, "beta"] == pytest.approx(enc.beta_max)
    assert enc.history_[-1, "lr"] == pytest.approx(enc.lr * (1 + np.cos(np.pi * 4 / 5)) / 2)


class _Module:
    def set_beta(self, beta):
        self.beta = beta


class _Net:
    """The parts of a skorch net the schedules use."""

    max_epochs = 3
    lr = 0.5

    def __init__(self):
        import torch

        self.module_ = _Module()
        self.history = History()
        self.optimizer_ = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=self.lr)

    def step(self, callbacks):
        if not self.history or len(self.history[-1, "batches"]) == 2:
            self.history.new_epoch()
        self.history.new_batch()  # as skorch's own on_batch_begin does
        for cb in callbacks:
            cb.on_batch_begin(self, training=True)


def test_step_schedules_count_steps_across_epochs():
    net = _Net()
    beta = OutputScaleSchedule(beta_end=16.0, max_steps=5)
    lr = CosineLRSchedule(max_steps=4)
    seen = []
    for _ in range(6):
        net.step([beta, lr])
        seen.append((net.module_.beta, net.optimizer_.param_groups[0]["lr"]))
    betas, lrs = np.array(seen).T
    np.testing.assert_allclose(betas, [1, 2, 4, 8, 16, 16])  # then stays at beta_end
    np.testing.assert_allclose(
        lrs, 0.5 * (1 + np.cos(np.pi * np.array([0, 1, 2, 3, 4, 4]) / 4)) / 2
    )
    assert training_steps(net) == 6


def test_verbose_0_prints_nothing(digits, capfd):
    X, _ = digits
    BinaryHashEncoder(random_state=0, verbose=0, **FAST).fit(X[:200])
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_verbose_1_prints_one_row_per_epoch(digits, capfd):
    X, _ = digits
    BinaryHashEncoder(random_state=0, verbose=1, **FAST).fit(X[:200])
    out, err = capfd.readouterr()
    for key in ("rdmreg", "train_loss", "vertex_dist", "hist", "ones_min", "ones_max", "max_corr"):
        assert key in out, key
    assert "hist_counts" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 2 + FAST["max_epochs"]  # header, rule, a row per epoch
    assert err == ""  # no progress bar when stderr is not a terminal


def test_encoder_uses_the_callbacks_by_default(fitted):
    kinds = [type(cb) for _, cb in fitted.net_.callbacks_]
    for kind in (OutputScaleSchedule, HypercubeDiagnostics, TrainingLog):
        assert kind in kinds, kind.__name__
    # no progress bar when not on a terminal (pytest captures stderr)
    assert ProgressBar not in kinds


def test_progress_bar_only_for_verbose_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress_bar_wanted(1, Terminal())
    assert not progress_bar_wanted(0, Terminal())
    assert not progress_bar_wanted(1, io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not progress_bar_wanted(1, closed)  # isatty raises ValueError on a closed stream


def test_verbose_encoder_on_a_terminal_uses_skorchs_progress_bar(digits, monkeypatch):
    import skhash.callbacks

    monkeypatch.setattr(skhash.callbacks, "progress_bar_wanted", lambda verbose: verbose >= 1)
    X, _ = digits
    enc = BinaryHashEncoder(random_state=0, verbose=1, **{**FAST, "max_epochs": 1})
    enc.fit(X[:100])
    bars = [cb for _, cb in enc.net_.callbacks_ if isinstance(cb, ProgressBar)]
    assert len(bars) == 1
    assert bars[0].postfix_keys == ["train_loss", *TERM_NAMES]
    assert bars[0].batches_per_epoch == 1  # 100 rows, batch size 256 → min(256, 100)


def test_training_log_orders_columns_and_frames_the_histogram():
    log = TrainingLog().initialize()
    row = {
        "epoch": 1,
        "train_loss": 1.5,
        "neighbor": 1.0,
        "rdmreg": 0.5,
        "beta": 2.0,
        "vertex_dist": 0.3,
        "hist": "  █▁▁▁▁▁▁█  ",
        "hist_counts": [1] * 12,
        "ones_min": 0.4,
        "ones_max": 0.6,
        "max_corr": 0.1,
        "dur": 0.2,
        "batches": [],
    }
    header, _, line = log.table(row).splitlines()
    assert header.split() == [
        "epoch",
        "rdmreg",
        "neighbor",
        "train_loss",
        "beta",
        "vertex_dist",
        "hist",
        "ones_min",
        "ones_max",
        "max_corr",
        "dur",
    ]
    assert "|  █▁▁▁▁▁▁█  |" in line


def test_training_log_honours_keys_ignored_and_drops_best_flags():
    log = TrainingLog(keys_ignored=["beta"]).initialize()
    row = {"epoch": 2, "train_loss": 1.0, "train_loss_best": True, "beta": 3.0, "dur": 0.1}
    header = log.table(row).splitlines()[0].split()
    assert header == ["epoch", "train_loss", "dur"]
    assert log.keys_ignored_ == {"beta", "batches"}  # its own set, not extended


def test_output_scale_schedule_sets_beta_through_the_module():
    class Module:
        def set_beta(self, beta):
            self.beta = beta

    class Net:
        max_epochs = 3
        module_ = Module()

        def __init__(self):
            self.history = History()
            self.history.new_epoch()

    net = Net()
    OutputScaleSchedule(beta_end=9.0).on_epoch_begin(net)
    assert net.module_.beta == net.history[-1, "beta"] == 1.0
    net.history.new_epoch()
    net.history.new_epoch()
    OutputScaleSchedule(beta_end=9.0).on_epoch_begin(net)
    assert net.module_.beta == pytest.approx(9.0)


def test_a_budget_of_one_step_trains_it_at_beta_end(digits):
    X, _ = digits
    enc = BinaryHashEncoder(**{**FAST, "max_epochs": 1}, batch_size=300, random_state=0)
    enc.fit(X[:300])  # one batch, one step: the last step
    assert enc.n_steps_ == 1
    assert enc.history_[-1, "beta"] == enc.beta_max


def test_histogram_counts_keep_tiny_values_on_their_side_of_zero():
    # 12 bins over (-1.5, 1.5): bin 5 is [-0.25, 0), bin 6 is [0, 0.25)
    assert histogram_counts([1e-12])[6] == 1
    assert histogram_counts([-1e-12])[5] == 1


@pytest.mark.parametrize(
    "ends", [{"beta_start": 0.0}, {"beta_start": -1.0}, {"beta_end": float("nan")}]
)
def test_output_scale_schedule_needs_positive_ends(ends):
    # beta_start=0 used to divide by zero at the first batch
    schedule = OutputScaleSchedule(**{"beta_end": 16.0, **ends})
    with pytest.raises(ValueError, match="OutputScaleSchedule needs a finite beta_"):
        schedule.initialize()
    assert OutputScaleSchedule(beta_end=16.0).initialize() is not None


class _ScaledLinear(torch.nn.Module):
    """A module with ``set_beta`` that remembers every value it was given."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)
        self.betas = []

    def set_beta(self, beta):
        self.beta = beta
        self.betas.append(beta)

    def forward(self, X):
        return self.linear(X)


def _tiny_net(callbacks, max_epochs=1, **kwargs):
    from skorch import NeuralNetRegressor

    X = np.random.default_rng(0).random((20, 3), dtype=np.float32)
    net = NeuralNetRegressor(
        _ScaledLinear,
        max_epochs=max_epochs,
        batch_size=10,
        train_split=None,
        verbose=0,
        callbacks=callbacks,
        **kwargs,
    )
    return net, X, X[:, :1].copy()


def test_epoch_schedule_of_one_epoch_ends_at_beta_end():
    # per-epoch beta with max_epochs=1 stayed at beta_start: the one epoch is the last
    net, X, y = _tiny_net([("s", OutputScaleSchedule(beta_end=8.0, beta_start=2.0))])
    net.fit(X, y)
    assert net.history[:, "beta"] == [8.0]
    net, X, y = _tiny_net([("s", OutputScaleSchedule(beta_end=8.0, beta_start=2.0))], 3)
    net.fit(X, y)
    assert net.history[:, "beta"] == [2.0, 4.0, 8.0]


@pytest.mark.parametrize("max_steps", [None, 4])
def test_output_scale_schedule_reaches_beta_end_exactly(max_steps):
    # beta_start * (beta_end / beta_start) ** 1 is 7.299999999999999 for 0.3 and 7.3
    schedule = OutputScaleSchedule(beta_end=7.3, beta_start=0.3, max_steps=max_steps)
    net, X, y = _tiny_net([("s", schedule)], max_epochs=2)
    net.fit(X, y)
    assert net.module_.betas[0] == 0.3
    assert net.module_.betas[-1] == 7.3
    assert np.all(np.diff(net.module_.betas) >= 0)  # monotone


@pytest.mark.parametrize("max_steps", [0, -2, 2.5, "auto", True])
def test_step_schedules_check_max_steps_at_initialize(max_steps):
    # these ran: 0 and -2 at the end values, 2.5 between, "auto" a TypeError mid-training
    for schedule in (
        OutputScaleSchedule(beta_end=8.0, max_steps=max_steps),
        CosineLRSchedule(max_steps=max_steps),
    ):
        name = type(schedule).__name__
        with pytest.raises(ValueError, match=f"{name} needs an int max_steps >= 1"):
            schedule.initialize()
    assert OutputScaleSchedule(beta_end=8.0, max_steps=None).initialize() is not None
    assert CosineLRSchedule(max_steps=np.int64(3)).initialize() is not None


@pytest.mark.parametrize("lr_min", [-0.1, float("nan"), float("inf"), "0"])
def test_cosine_schedule_checks_lr_min_at_initialize(lr_min):
    # a negative lr_min trained with a negative learning rate (gradient ascent), NaN with NaN
    net, X, y = _tiny_net([("c", CosineLRSchedule(max_steps=4, lr_min=lr_min))], lr=0.01)
    with pytest.raises(ValueError, match="CosineLRSchedule needs a finite lr_min >= 0"):
        net.fit(X, y)
    net, X, y = _tiny_net([("c", CosineLRSchedule(max_steps=4, lr_min=0))], lr=0.01)
    assert net.fit(X, y).history[-1, "lr"] > 0


def test_diagnostics_keep_their_params_after_training_so_nets_clone():
    # the last batch was kept in `_last`, which skorch (no trailing "_") took for a
    # parameter: get_params listed it and clone, of the callback or the net, failed
    net, X, y = _tiny_net([("d", HypercubeDiagnostics(bins=6))])
    net.fit(X, y)
    diagnostics = dict(net.callbacks_)["d"]
    assert set(diagnostics.get_params()) == {"bins", "value_range"}
    assert clone(diagnostics).get_params() == {"bins": 6, "value_range": HIST_RANGE}
    assert clone(net).initialize().get_params()["callbacks__d__bins"] == 6
    assert len(net.history[-1, "hist_counts"]) == 6


@pytest.mark.parametrize(
    "params", [{"bins": 0}, {"bins": 2.0}, {"value_range": (1.0, -1.0)}, {"value_range": 3}]
)
def test_diagnostics_check_their_params_at_initialize(params):
    # bins=0 failed in numpy at the end of the first epoch, after its training
    with pytest.raises(ValueError, match="HypercubeDiagnostics needs"):
        HypercubeDiagnostics(**params).initialize()
