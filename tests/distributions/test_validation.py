"""Bad input raises a ValueError that names what was wrong."""

import math

import pytest
import torch

from pyro_vje.distributions import DirectionalStudentT, PolarStudentT, RadialStudentT

ALL = [DirectionalStudentT, RadialStudentT, PolarStudentT]
WITH_DIRECTION = [DirectionalStudentT, PolarStudentT]


def _make(cls, df=3.0, loc=None, scale=None, **kw):
    loc = torch.randn(4, 3) if loc is None else loc
    if cls is RadialStudentT:
        return cls(df, loc, 1.0 if scale is None else scale, **kw)
    return cls(df, loc, torch.ones(4, 3) if scale is None else scale, **kw)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("df", [0.0, -1.0, math.nan])
def test_non_positive_or_nan_df(cls, df):
    with pytest.raises(ValueError, match="df"):
        _make(cls, df=df)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("bad", [0.0, -0.5, math.nan])
def test_non_positive_or_nan_scale(cls, bad):
    scale = bad if cls is RadialStudentT else torch.full((4, 3), 1.0).index_fill(1, torch.tensor([1]), bad)
    with pytest.raises(ValueError, match="scale"):
        _make(cls, scale=scale)


def test_non_positive_radial_scale_of_polar():
    with pytest.raises(ValueError, match="radial_scale"):
        PolarStudentT(3.0, torch.randn(3), torch.ones(3), radial_scale=0.0)


@pytest.mark.parametrize("cls", ALL)
def test_nan_loc(cls):
    loc = torch.randn(4, 3)
    loc[2, 1] = math.nan
    with pytest.raises(ValueError, match="loc"):
        _make(cls, loc=loc)


@pytest.mark.parametrize("cls", WITH_DIRECTION)
def test_zero_loc_has_no_direction(cls):
    loc = torch.randn(4, 3)
    loc[1] = 0.0
    with pytest.raises(ValueError, match="zero vectors"):
        _make(cls, loc=loc)


def test_radial_accepts_zero_loc():
    lp = RadialStudentT(3.0, torch.zeros(3)).log_prob(torch.ones(3))
    assert torch.isfinite(lp)


@pytest.mark.parametrize("cls", [DirectionalStudentT, PolarStudentT])
def test_scale_with_wrong_feature_count(cls):
    with pytest.raises(ValueError, match="D = 3"):
        cls(3.0, torch.randn(4, 3), torch.ones(4, 2))


@pytest.mark.parametrize("cls", ALL)
def test_unbroadcastable_batch_shapes(cls):
    with pytest.raises(ValueError, match="broadcast"):
        _make(cls, df=torch.full((5,), 3.0))


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("validate", [True, False])
def test_value_with_wrong_event_size(cls, validate):
    """Checked even without validation: a (.., 1) value would otherwise broadcast silently."""
    d = _make(cls, validate_args=validate)
    for value in (torch.randn(4, 2), torch.randn(4, 1), torch.tensor(1.0)):
        with pytest.raises(ValueError, match=r"expected \(\.\.\., 3\)"):
            d.log_prob(value)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_value(cls, bad):
    value = torch.randn(4, 3)
    value[0, 0] = bad
    with pytest.raises(ValueError, match="NaN|invalid values|infinite"):
        _make(cls).log_prob(value)


@pytest.mark.parametrize("cls", WITH_DIRECTION)
def test_zero_value_under_validation(cls):
    value = torch.randn(4, 3)
    value[3] = 0.0
    with pytest.raises(ValueError, match="zero vectors"):
        _make(cls).log_prob(value)
    # without validation the eps floor of Appendix A keeps it finite
    assert torch.isfinite(_make(cls, validate_args=False).log_prob(value)).all()


@pytest.mark.parametrize("cls", ALL)
def test_loc_must_be_a_vector_tensor(cls):
    with pytest.raises(ValueError, match="event dimension"):
        _make(cls, loc=torch.tensor(1.0), scale=1.0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        _make(cls, loc=[1.0, 2.0, 3.0], scale=1.0)


def test_radial_scale_that_does_not_broadcast_is_named():
    with pytest.raises(ValueError, match="radial_scale of shape"):
        PolarStudentT(3.0, torch.randn(4, 3), 1.0, radial_scale=torch.rand(5))


def test_a_zero_loc_suggests_the_autoguide_init():  # issue 26: AutoNormal's default init is 0
    with pytest.raises(ValueError, match=r"init_loc_fn=init_to_sample"):
        PolarStudentT(3.0, torch.zeros(3), torch.ones(3))
