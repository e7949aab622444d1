"""What a family says about its values, which the rest of pcgraph asks instead of
naming it: scores against data (checked by hand), the data it makes for synthetic
and benchmark targets (which its own node must accept), and the tables and reports
of its values (one name per column)."""

import math

import pytest
import torch

from pcgraph.families import families
from pcgraph.families.values import score_values
from tests.numerics.test_families import IDS, VARIANTS, B, D, make


def test_values_with_class_indices_score_accuracy_and_the_error_against_one_hot_rows():
    value = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.4, 0.1]], dtype=D)
    got = score_values(value, torch.tensor([1, 2]))
    assert got["accuracy"][0].item() == 1 and got["accuracy"][1] == 2
    onehot = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=D)
    torch.testing.assert_close(got["mse"][0], ((value - onehot) ** 2).sum())
    assert got["mse"][1] == 6


def test_float_values_score_the_squared_error_and_where_unobserved():
    value = torch.tensor([[1.0, 2.0], [3.0, 5.0]], dtype=D)
    truth = torch.tensor([[1.0, 0.0], [2.0, 5.0]], dtype=D)
    mask = torch.tensor([[True, False], [False, True]])
    got = score_values(value, truth, mask)
    assert "accuracy" not in got
    assert got["mse"][0].item() == 5.0 and got["mse"][1] == 4
    assert got["mse_unobserved"][0].item() == 5.0 and got["mse_unobserved"][1] == 2


def test_integer_data_that_are_not_class_indices_score_as_values():
    value = torch.tensor([[0.2, 0.9], [0.6, 0.1]], dtype=D)
    got = score_values(value, torch.tensor([[0, 1], [1, 0]]))  # one binary unit per entry
    assert set(got) == {"mse"}
    torch.testing.assert_close(got["mse"][0], torch.tensor(0.04 + 0.01 + 0.16 + 0.01, dtype=D))


def test_a_categorical_sequence_scores_tokens_and_the_cross_entropy_per_token():
    fam = make("categorical", {}, True)
    seq = families.get("categorical")(fam.Options(), (3, 4), dtype=D)
    probs = torch.softmax(torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1), dtype=D), -1)
    labels = probs.argmax(-1)
    labels[0, 0] = (labels[0, 0] + 1) % 4  # one wrong token of six
    energy = torch.tensor([1.5, 2.5], dtype=D)
    got = seq.score(probs, labels, energy)
    assert got["accuracy"][0].item() == 5 and got["accuracy"][1] == 6
    assert got["ce_token"][0].item() == 4.0 and got["ce_token"][1] == 6


def test_a_mean_and_variance_node_compares_its_mean_with_data_of_its_own_units():
    fam = families.get("gaussian_meanvar")(families.get("gaussian_meanvar").Options(), (2,), dtype=D)
    value = torch.tensor([[1.0, 2.0, 0.0, 0.0]], dtype=D)  # mean (1, 2), log-variance 0
    assert fam.score(value, torch.tensor([[1.0, 4.0]], dtype=D))["mse"][0].item() == 4.0
    assert fam.score(value, torch.tensor([[1.0, 2.0, 0.0, 1.0]], dtype=D))["mse"][0].item() == 1.0
    parts = fam.decoded(value)
    torch.testing.assert_close(parts["variance"], torch.ones(1, 2, dtype=D))


@pytest.mark.parametrize("name,o,kl", VARIANTS, ids=IDS)
def test_the_data_a_family_makes_fits_its_own_node(name, o, kl):
    """A synthetic target made from a teacher's mean parameters, and a benchmark's
    random target, are data the family's own node accepts."""
    fam = make(name, o, kl)
    gen = torch.Generator().manual_seed(4)
    mu = torch.randn((B,) + fam.param_shape, generator=gen, dtype=D)
    target = fam.synthetic_target(fam.prediction_value(mu), 0.1, gen)
    assert fam.check_data(target) is None
    assert fam.check_data(fam.random_data(fam.shape, B, gen)) is None


@pytest.mark.parametrize("name,o,kl", VARIANTS, ids=IDS)
def test_a_family_names_every_column_of_its_table_and_reports_what_it_holds(name, o, kl):
    fam = make(name, o, kl)
    mu = torch.randn((B,) + fam.param_shape, generator=torch.Generator().manual_seed(5), dtype=D)
    value = fam.prediction_value(mu)
    header, table = fam.table(value)
    assert len(header) == len(set(header)) == table.reshape(B, -1).shape[1] == math.prod(fam.param_shape)
    shown = fam.decoded(value)
    parts = shown.values() if isinstance(shown, dict) else [shown]
    assert sum(p[0].numel() for p in parts) == math.prod(fam.param_shape)


def test_every_family_draws_in_its_own_colour():
    styles = [cls.style for _, cls in families.items()]
    assert len(set(styles)) == len(styles)
