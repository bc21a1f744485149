"""Shapes, expand and Pyro integration, in the style of Pyro's distribution tests."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine

from pyro_vje.distributions import DirectionalStudentT, PolarStudentT, RadialStudentT

D = 4


def _make(cls, batch_shape):
    loc = torch.randn(batch_shape + (D,))
    if cls is RadialStudentT:
        return cls(3.0, loc, torch.rand(batch_shape) + 0.5)
    return cls(3.0, loc, torch.rand(batch_shape + (D,)) + 0.1)


CLASSES = [DirectionalStudentT, RadialStudentT, PolarStudentT]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("batch_shape", [(), (7,), (3, 5)])
@pytest.mark.parametrize("sample_shape", [(), (2,), (2, 3)])
def test_sample_and_log_prob_shapes(cls, batch_shape, sample_shape):
    d = _make(cls, batch_shape)
    assert d.batch_shape == batch_shape and d.event_shape == (D,)
    assert d.shape(sample_shape) == sample_shape + batch_shape + (D,)
    x = d.sample(sample_shape)
    assert x.shape == sample_shape + batch_shape + (D,)
    assert d.rsample(sample_shape).shape == x.shape
    assert d.log_prob(x).shape == sample_shape + batch_shape


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("new_shape", [(7,), (2, 7), (3, 2, 7)])
def test_expand(cls, new_shape):
    d = _make(cls, (7,))
    e = d.expand(new_shape)
    assert type(e) is cls
    assert e.batch_shape == new_shape and e.event_shape == d.event_shape
    x = e.sample()
    assert x.shape == new_shape + (D,)
    torch.testing.assert_close(e.log_prob(x), d.log_prob(x))
    assert e._validate_args == d._validate_args
    with pytest.raises((ValueError, RuntimeError)):
        d.expand((6,))


@pytest.mark.parametrize("cls", CLASSES)
def test_expand_of_scalar_batch_and_to_event(cls):
    d = _make(cls, ())
    e = d.expand((3, 2)).to_event(1)
    assert e.batch_shape == (3,) and e.event_shape == (2, D)
    assert e.log_prob(e.sample()).shape == (3,)


@pytest.mark.parametrize("cls", CLASSES)
def test_infer_shapes(cls):
    kw = {"df": (3, 1), "loc": (5, D)}
    if cls is RadialStudentT:
        kw["scale"] = (1,)
    else:
        kw["scale"] = (D,)
    batch_shape, event_shape = cls.infer_shapes(**kw)
    assert batch_shape == (3, 5) and event_shape == (D,)


@pytest.mark.parametrize("cls", CLASSES)
def test_arg_constraints_and_support(cls):
    d = _make(cls, (2,))
    for name in cls.arg_constraints:
        assert hasattr(d, name)
    assert d.support.event_dim == 1
    assert d.has_rsample


def test_polar_as_observation_in_a_plated_model():
    """The distribution composes with pyro.plate and poutine like any Pyro distribution."""
    z = torch.randn(10, D)

    def model():
        s = pyro.sample("s", dist.Normal(torch.zeros(D), 1.0).to_event(1))
        with pyro.plate("data", 10):
            pyro.sample("z", PolarStudentT(3.0, s, 0.5), obs=z)

    tr = poutine.trace(model).get_trace()
    tr.compute_log_prob()
    site = tr.nodes["z"]
    assert site["fn"].batch_shape == (10,)
    assert site["log_prob"].shape == (10,)
    torch.testing.assert_close(site["log_prob"], PolarStudentT(3.0, tr.nodes["s"]["value"], 0.5).log_prob(z))


def test_polar_as_a_latent_site():
    """rsample makes it usable as a reparameterized latent variable."""

    def model():
        with pyro.plate("n", 3):
            return pyro.sample("s", PolarStudentT(2.0, torch.ones(D), 0.3))

    tr = poutine.trace(model).get_trace()
    assert tr.nodes["s"]["value"].shape == (3, D)
    assert tr.log_prob_sum().isfinite()


def test_mixture_same_family_of_polar_components():
    k = 3
    components = PolarStudentT(3.0, torch.randn(k, D), torch.rand(k, D) + 0.2)
    weights = torch.tensor([0.2, 0.5, 0.3])
    mixture = dist.MixtureSameFamily(dist.Categorical(weights), components)
    z = torch.randn(7, D)
    expected = torch.logsumexp(components.log_prob(z.unsqueeze(-2)) + weights.log(), -1)
    torch.testing.assert_close(mixture.log_prob(z), expected)
    assert mixture.sample((2,)).shape == (2, D)


def test_broadcast_shape_agrees_with_torch():
    """The distributions broadcast with Pyro's pure-Python helper; it must agree with torch."""
    import random

    from pyro.distributions.util import broadcast_shape

    rng = random.Random(0)
    sizes = [1, 2, 3]
    for _ in range(300):
        shapes = [
            tuple(rng.choice(sizes) for _ in range(rng.randint(0, 3))) for _ in range(rng.randint(1, 3))
        ]
        try:
            expected = torch.broadcast_shapes(*shapes)
        except RuntimeError:
            with pytest.raises(ValueError):
                broadcast_shape(*shapes)
        else:
            assert torch.Size(broadcast_shape(*shapes)) == expected
    assert torch.Size(broadcast_shape()) == torch.Size([])
    assert torch.Size(broadcast_shape((0,), (1,))) == torch.Size([0])


@pytest.mark.parametrize("cls", CLASSES)
def test_pickle_and_deepcopy(cls):
    import copy
    import pickle

    d = _make(cls, (3,))
    x = d.sample()
    for clone in (pickle.loads(pickle.dumps(d)), copy.deepcopy(d)):
        assert type(clone) is cls and clone.batch_shape == d.batch_shape
        torch.testing.assert_close(clone.log_prob(x), d.log_prob(x))


@pytest.mark.parametrize("cls", CLASSES)
def test_subsequent_expands_and_expand_by(cls):
    d = _make(cls, ())
    e = d.expand((4,)).expand((2, 4))
    assert e.batch_shape == (2, 4)
    assert d.expand_by((5,)).batch_shape == (5,)
