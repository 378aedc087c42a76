"""The pure loss functions, the samplers, and the loss-term table built on them."""

import inspect
import math

import numpy as np
import pytest
import torch

from skhash import BinaryHashEncoder, losses
from skhash._batch import Batch
from skhash._objective import LOSS_TERMS, TERM_NAMES, HashingLoss, required_settings
from skhash.callbacks import OutputScaleSchedule, TrainingLog
from skhash.losses import (
    koleo_loss,
    label_centroid_loss,
    neighbor_contrastive_loss,
    rdmreg,
    similarity_distillation_loss,
    vertex_distance,
)
from skhash.plotting import LOSS_TERMS as PLOTTED
from skhash.samplers import PROJECTIONS, sample_hypercube, sample_projections


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.8])
def test_sample_hypercube_values_and_sparsity(sparsity):
    t = sample_hypercube((4000, 16), sparsity, gen())
    assert set(t.unique().tolist()) == {-1.0, 1.0}
    assert abs((t == -1).float().mean().item() - sparsity) < 0.01


def test_sample_hypercube_is_reproducible_and_rejects_bad_sparsity():
    first = sample_hypercube((5, 7), 0.5, gen(3))
    assert torch.equal(first, sample_hypercube((5, 7), 0.5, gen(3)))
    assert not torch.equal(first, sample_hypercube((5, 7), 0.5, gen(4)))
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ValueError, match="sparsity"):
            sample_hypercube((2, 2), bad, gen())
    # -1 must be representable: uint8 gave 255, bool True
    for dtype in (torch.uint8, torch.bool, torch.complex64):
        with pytest.raises(ValueError, match="dtype must be a floating or signed integer"):
            sample_hypercube((2, 2), 0.5, gen(), dtype=dtype)
    for dtype in (torch.int8, torch.float16, torch.float64):
        values = sample_hypercube((50, 4), 0.5, gen(), dtype=dtype)
        assert values.dtype == dtype and set(torch.unique(values).tolist()) == {-1, 1}


@pytest.mark.parametrize("kind, nonzeros", [("sphere", 32), ("active", 5), ("axis", 1)])
def test_projections_unit_norm_and_support(kind, nonzeros):
    p = sample_projections(32, 100, kind, active_dims=5, generator=gen())
    assert p.shape == (32, 100)
    torch.testing.assert_close(p.norm(dim=0), torch.ones(100))
    assert ((p != 0).sum(0) == nonzeros).all()


def test_active_projection_clips_to_dimension_and_unknown_kind_fails():
    p = sample_projections(3, 10, "active", active_dims=8, generator=gen())
    assert ((p != 0).sum(0) == 3).all()
    with pytest.raises(ValueError, match="kind must be one of"):
        sample_projections(3, 10, "diagonal", generator=gen())
    # no coordinate to slice: "unit" columns would be empty (0) or a raw torch error (< 0)
    for n_dims in (0, -1):
        with pytest.raises(ValueError, match="n_dims must be >= 1"):
            sample_projections(n_dims, 10, "active", generator=gen())


def test_rdmreg_is_zero_for_a_permutation_of_the_targets():
    targets = sample_hypercube((64, 8), 0.5, gen())
    slices = sample_projections(8, 32, "sphere", generator=gen(1))
    shuffled = targets[torch.randperm(64, generator=gen(2))]
    assert rdmreg(shuffled, targets, slices).item() == pytest.approx(0.0, abs=1e-10)
    assert rdmreg(torch.zeros(64, 8), targets, slices).item() > 0.5


def test_rdmreg_gradient_moves_outputs_toward_the_targets():
    z = (0.1 * torch.randn(128, 4, generator=gen(1))).requires_grad_()
    opt = torch.optim.SGD([z], lr=5.0)
    start = vertex_distance(z.detach())
    for step in range(200):
        opt.zero_grad()
        rdmreg(
            z,
            sample_hypercube((128, 4), 0.5, gen(step)),
            sample_projections(4, 16, "axis", generator=gen(1000 + step)),
        ).backward()
        opt.step()
    assert vertex_distance(z.detach()) < start / 3


def test_rdmreg_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        rdmreg(torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(3, 1))


def test_dependent_bits_pass_axis_slices_but_not_three_dimensional_ones():
    # all 8 vertices equally often, against b2 = b0 * b1 on the 4 vertices it allows:
    # each single bit (and each pair) is uniform in both, the triple is not
    vertices = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0])] * 3)
    targets = vertices.repeat(64, 1)
    dependent = vertices[vertices[:, 2] == vertices[:, 0] * vertices[:, 1]].repeat(128, 1)
    axis = sample_projections(3, 64, "axis", generator=gen(2))
    dense = sample_projections(3, 64, "sphere", generator=gen(2))
    assert rdmreg(dependent, targets, axis).item() == pytest.approx(0.0, abs=1e-10)
    assert rdmreg(dependent, targets, dense).item() > 0.05


def test_koleo_penalises_dependent_bits_and_duplicates():
    n_bits = 10
    independent = sample_hypercube((256, n_bits), 0.5, gen(0))
    dependent = independent.clone()
    dependent[:, -1] = dependent[:, 0] * dependent[:, 1]
    assert koleo_loss(dependent).item() > koleo_loss(independent).item()
    collapsed = independent[:1].repeat(256, 1)
    assert koleo_loss(collapsed).item() == pytest.approx(-math.log(1e-3), rel=1e-5)


def test_koleo_single_row_is_zero_with_a_zero_gradient():
    # a lone row has no nearest other item: the term must vanish, yet stay in the graph
    z = torch.ones(1, 4, requires_grad=True)
    loss = koleo_loss(z)
    loss.backward()
    assert loss.item() == 0.0
    torch.testing.assert_close(z.grad, torch.zeros(1, 4))


def test_koleo_matches_its_formula_on_near_duplicates():
    # above 25 rows torch.cdist takes a matrix product, whose float32 rounding puts
    # near-duplicates (the items this term is for) ~1e-3 apart: value and gradient were off
    g = gen(0)
    base = torch.tanh(torch.randn(32, 64, generator=g))
    z = torch.cat([base, base + 1e-4 * torch.randn(32, 64, generator=g)]).requires_grad_()
    loss = koleo_loss(z)
    (grad,) = torch.autograd.grad(loss, z)
    # the docstring's formula in float64, pair by pair
    ref = z.detach().double().requires_grad_()
    with torch.no_grad():
        pairwise = (ref[:, None] - ref[None]).norm(dim=2).fill_diagonal_(np.inf)
    nearest = (ref - ref[pairwise.argmin(1)]).norm(dim=1) / 64**0.5
    expected = -torch.log(nearest + 1e-3).mean()
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(grad.double(), ref.grad, rtol=1e-3, atol=1e-4)
    # exact duplicates: the formula's -log(eps), a finite (zero) gradient
    twins = torch.cat([base, base]).requires_grad_()
    loss = koleo_loss(twins)
    loss.backward()
    assert loss.item() == pytest.approx(-math.log(1e-3), rel=1e-6)
    assert torch.isfinite(twins.grad).all()


def test_label_centroid_loss_hand_computed():
    z = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [0.0, 0.0]])
    labels = torch.tensor([0, 0, 1, -1])
    # class 0 centre (0, 1): squared distances 1 and 1; class 1 alone: 0
    expected = (1 + 1 + 0) / (3 * 2)
    assert label_centroid_loss(z, labels).item() == pytest.approx(expected)
    assert label_centroid_loss(z, torch.full((4,), -1)).item() == 0.0


def test_neighbor_contrastive_prefers_matching_pairs():
    anchors = sample_hypercube((32, 16), 0.5, gen(0))
    matched = neighbor_contrastive_loss(anchors, anchors.clone())
    shuffled = neighbor_contrastive_loss(anchors, anchors[torch.randperm(32, generator=gen(1))])
    assert matched.item() < shuffled.item()
    with pytest.raises(ValueError, match="same shape"):
        neighbor_contrastive_loss(anchors, anchors[:, :3])


def test_vertex_distance():
    assert vertex_distance(torch.tensor([[1.0, -1.0]])) == 0.0
    assert vertex_distance(torch.tensor([[0.0, 0.5]])) == pytest.approx(0.75)


def test_vertex_distance_of_a_numpy_array():
    # documented for numpy arrays too, e.g. encoder.embed(X); it called the tensor's .abs()
    assert vertex_distance(np.array([[0.0, 0.5], [1.0, -1.0]])) == pytest.approx(0.375)


def test_similarity_distillation_prefers_codes_that_keep_the_input_ranking():
    inputs = torch.randn(64, 20, generator=gen(0))
    # codes that are a sign random projection of the inputs keep their geometry;
    # the same codes shuffled across rows do not
    codes = torch.sign(inputs @ torch.randn(20, 32, generator=gen(1)))
    shuffled = codes[torch.randperm(64, generator=gen(2))]
    kept = similarity_distillation_loss(codes, inputs)
    lost = similarity_distillation_loss(shuffled, inputs)
    assert kept.item() < lost.item()


def test_similarity_distillation_gradient_is_finite_on_duplicates():
    z = torch.ones(4, 8, requires_grad=True)
    loss = similarity_distillation_loss(z, torch.ones(4, 3))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("scale", [2.0**66, 2.0**-43, 1e20, 1e-13])
def test_similarity_distillation_does_not_depend_on_the_rows_scale(scale):
    # float32 squared norms overflow beyond ~1e19 and F.normalize clamps norms below 1e-12
    inputs = torch.randn(32, 6, generator=gen(0))
    codes = torch.tanh(torch.randn(32, 16, generator=gen(1)))
    reference = similarity_distillation_loss(codes, inputs)
    scaled = similarity_distillation_loss(codes, (inputs.double() * scale).float())
    if math.log2(scale).is_integer():  # exact scaling: exact result
        assert scaled.item() == reference.item()
    else:  # rounded rows: close
        torch.testing.assert_close(scaled, reference, rtol=1e-5, atol=1e-5)


def test_similarity_distillation_zero_rows_are_finite_and_uninformative():
    inputs = torch.randn(8, 5, generator=gen(0))
    inputs[3] = 0.0
    z = torch.tanh(torch.randn(8, 16, generator=gen(1))).requires_grad_()
    loss = similarity_distillation_loss(z, inputs)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def settings(**changes):
    enc = BinaryHashEncoder(**changes)
    return {
        **enc.get_params(),
        "temperature": enc._temperature(),
        # "auto" is resolved from the training rows by fit; 0.05 without any
        "teacher_temperature": enc._teacher_temperature(None),
    }


def test_every_table_entry_names_an_encoder_parameter_and_a_public_loss():
    params = BinaryHashEncoder().get_params()
    for term in LOSS_TERMS:
        assert term.weight in params and term.weight in BinaryHashEncoder._parameter_constraints
        assert all(option in params for option in term.options)
        assert getattr(losses, term.function.__name__) is term.function
    assert set(required_settings()) <= set(params)
    assert TERM_NAMES == ("rdmreg", "centroid", "anticollapse", "neighbor")


def test_no_defaults_outside_the_encoder():
    # the loss module and the steepness schedule take the encoder's values, no defaults
    for cls, name in ((HashingLoss, "settings"), (OutputScaleSchedule, "beta_end")):
        assert inspect.signature(cls).parameters[name].default is inspect.Parameter.empty
    with pytest.raises(ValueError, match="needs the settings"):
        HashingLoss({"reg_weight": 1.0}, seed=0)


def test_log_and_plot_columns_come_from_the_table():
    assert TrainingLog.COLUMNS[1 : 1 + len(TERM_NAMES)] == TERM_NAMES
    assert PLOTTED == TERM_NAMES
    assert set(PROJECTIONS) == BinaryHashEncoder._parameter_constraints["projection"][0].options


def batch(n=16, d=5, labelled=False, partners=True):
    g = torch.Generator().manual_seed(0)
    items = torch.randn(n, d, generator=g)
    labels = torch.arange(n) % 3 if labelled else torch.full((n,), -1)
    return Batch(items, labels, torch.randn(n, d, generator=g) if partners else None)


def test_terms_on_follow_weights_labels_and_partners():
    b = batch()
    out = torch.tanh(torch.randn(len(b.inputs), 8, generator=torch.Generator().manual_seed(1)))
    terms = HashingLoss(settings(n_bits=8), seed=0)(out, b)
    assert set(terms) == {"rdmreg", "anticollapse", "neighbor", "loss"}  # no labels
    torch.testing.assert_close(
        terms["loss"], terms["rdmreg"] + terms["anticollapse"] + terms["neighbor"]
    )
    labelled = HashingLoss(settings(n_bits=8), seed=0)(out, batch(labelled=True))
    assert "centroid" in labelled
    b1 = batch(partners=False)
    alone = HashingLoss(settings(n_bits=8, anticollapse_weight=0.0), seed=0)(out[:16], b1)
    assert set(alone) == {"rdmreg", "loss"}  # no partners: the neighbourhood term is off


def test_each_term_is_its_weight_times_its_pure_function():
    b = batch(labelled=True)
    out = torch.tanh(torch.randn(len(b.inputs), 8, generator=torch.Generator().manual_seed(1)))
    s = settings(
        n_bits=8,
        reg_weight=0.7,
        centroid_weight=2.5,
        anticollapse_weight=0.5,
        neighbor_weight=1.5,
        neighbor_loss="contrastive",
    )
    terms = HashingLoss(s, seed=0)(out, b)
    codes, partners = b.split(out)
    # RDMReg's draws replayed: from the seed, its targets, then its slices (the first term)
    g = gen(0)
    targets = sample_hypercube(codes.shape, s["sparsity"], g)
    slices = sample_projections(8, s["n_projections"], s["projection"], s["active_dims"], g)
    torch.testing.assert_close(terms["rdmreg"], 0.7 * losses.rdmreg(codes, targets, slices))
    torch.testing.assert_close(
        terms["centroid"], 2.5 * losses.label_centroid_loss(codes, b.labels)
    )
    torch.testing.assert_close(terms["anticollapse"], 0.5 * losses.koleo_loss(codes, b.labels))
    expected = losses.neighbor_contrastive_loss(codes, partners, temperature=s["temperature"])
    torch.testing.assert_close(terms["neighbor"], 1.5 * expected)


def test_batch_validates_its_blocks():
    with pytest.raises(ValueError, match="labels"):
        Batch(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="blocks"):
        Batch(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(5, 3))
    b = batch(n=4)
    assert len(b) == 4 and len(b.inputs) == 8
    np.testing.assert_array_equal(b.inputs[4:].numpy(), b.partners.numpy())


def test_the_loss_needs_a_resolved_teacher_temperature():
    with pytest.raises(ValueError, match="teacher_temperature"):
        HashingLoss({**settings(), "teacher_temperature": "auto"}, seed=0)


@pytest.mark.parametrize("n", [8, 40])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_koleo_takes_half_precision_codes(dtype, n):
    # torch.cdist, which picks the candidates, has no half-precision CPU kernel for up to
    # 25 rows (above, it takes a matrix product): it raised
    z32 = torch.tanh(torch.randn(n, 16, generator=gen(0)))
    z = z32.to(dtype).requires_grad_()
    loss = koleo_loss(z)
    loss.backward()
    assert loss.dtype == dtype and torch.isfinite(z.grad).all()
    reference = koleo_loss(z.detach().float())
    assert loss.item() == pytest.approx(reference.item(), rel=0.02)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "active", "active_dims": 0}, "active_dims"),
        ({"kind": "active", "active_dims": -1}, "active_dims"),
        ({"n_projections": 0}, "n_projections"),
    ],
)
def test_projections_reject_empty_slices(kwargs, match):
    # active_dims=0 returned all-zero "unit" directions; no slice made RDMReg NaN
    with pytest.raises(ValueError, match=match):
        sample_projections(8, **{"n_projections": 4, **kwargs}, generator=gen())


def test_row_counts_of_distillation_and_centroid_are_checked():
    # a mismatch failed deep in torch (masked_fill, a boolean mask) without naming it
    z = torch.zeros(4, 8)
    with pytest.raises(ValueError, match="embed and inputs must have the same number of rows"):
        similarity_distillation_loss(z, torch.randn(5, 3))
    with pytest.raises(ValueError, match="labels must have one entry per row of embed"):
        label_centroid_loss(z, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must have one entry per row of embed"):
        label_centroid_loss(z, torch.zeros(4, 1, dtype=torch.long))


def test_the_loss_draws_targets_and_slices_in_the_outputs_dtype():
    # the draws were float32 whatever the outputs: float64 outputs failed in RDMReg's matmul
    b = batch(labelled=True)
    out = torch.tanh(torch.randn(len(b.inputs), 8, generator=torch.Generator().manual_seed(1)))
    terms32 = HashingLoss(settings(n_bits=8), seed=0)(out, b)
    terms64 = HashingLoss(settings(n_bits=8), seed=0)(out.double(), b)
    assert terms64["loss"].dtype == torch.float64
    for name in terms32:
        assert terms64[name].item() == pytest.approx(terms32[name].item(), rel=1e-4)


def test_koleo_takes_each_items_nearest_item_outside_its_class():
    # class mates sit together on purpose (the label centroid pulls them, fit(X, y)
    # batches them in pairs): their closeness must not be pushed apart
    z = torch.tensor([[1.0, 1, 1, 1], [1, 1, 1, 0.8], [-1, 1, 1, 1], [-1, -1, -1, -1]])
    labels = torch.tensor([0, 0, 1, -1])
    loss = koleo_loss(z, labels)
    # 0 and 1 skip each other: 0 -> 2 (distance 2), 1 -> 2 (sqrt(4 + 0.04)); 2 -> 0 (2);
    # 3 is unlabelled, every item is eligible: -> 2 (sqrt(12))
    nearest = torch.tensor([2.0, (4.04) ** 0.5, 2.0, 12**0.5]) / 2
    assert loss.item() == pytest.approx(-torch.log(nearest + 1e-3).mean().item(), rel=1e-6)
    # unlabelled items only: the plain term, bit for bit
    g = gen(0)
    w = torch.tanh(torch.randn(40, 16, generator=g))
    assert koleo_loss(w, torch.full((40,), -1)).item() == koleo_loss(w).item()
    # one class only: nothing else to keep off, so class mates are (the centroid alone
    # would pull the whole batch onto one code): the plain term, bit for bit
    w.requires_grad_()
    loss = koleo_loss(w, torch.zeros(40, dtype=torch.long))
    loss.backward()
    assert loss.item() == koleo_loss(w.detach()).item() != 0.0
    assert (w.grad != 0).any()
    with pytest.raises(ValueError, match="one entry per row"):
        koleo_loss(z, labels[:3])
