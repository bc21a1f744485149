"""ResNet encoders and the projection head (paper Sections 5.1 and 5.2)."""

import pyro
import pytest
import torch
import torchvision
from pyro.nn import PyroModule
from torch import nn

from pyro_vje.model import VJE
from pyro_vje.networks import (
    ENCODERS,
    InferenceNetwork,
    ProjectedEncoder,
    ProjectionHead,
    build_encoder,
    resnet18,
    resnet50,
    with_projector,
)


@pytest.fixture(params=[False, True], ids=["global_params", "module_local_params"])
def param_mode(request):
    """Run a test with Pyro's global param store and with module-local params; restore afterwards."""
    old = pyro.settings.get("module_local_params")
    pyro.settings.set(module_local_params=request.param)
    try:
        yield request.param
    finally:
        pyro.settings.set(module_local_params=old)


def _torchvision_keys(factory) -> list[str]:
    with torch.device("meta"):  # names only: no initialization cost
        ref = factory(weights=None)
    return [k for k in ref.state_dict() if not k.startswith("fc.")]


def _layer1_input_size(module: nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    """Spatial size after the stem (conv1, bn1, relu, maxpool), seen by a hook on layer1."""
    seen = []
    handle = module.layer1.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape)))
    try:
        out = module(x)
    finally:
        handle.remove()
    assert out.shape == (x.shape[0], module.dim)
    return seen[0][-2:]


def test_resnet18_cifar_stem():
    m = resnet18(cifar_stem=True)
    conv = m.conv1
    assert (conv.kernel_size, conv.stride, conv.padding, conv.bias) == ((3, 3), (1, 1), (1, 1), None)
    assert isinstance(m.maxpool, nn.Identity) and isinstance(m.fc, nn.Identity)
    assert isinstance(m.conv1, PyroModule) and isinstance(m.maxpool, PyroModule)
    assert m.dim == 512
    assert _layer1_input_size(m, torch.randn(2, 3, 32, 32)) == (32, 32)
    assert [k for k in m.state_dict()] == _torchvision_keys(torchvision.models.resnet18)


def test_resnet18_standard_stem_on_96x96():
    m = resnet18()
    assert (m.conv1.kernel_size, m.conv1.stride) == ((7, 7), (2, 2))
    assert isinstance(m.maxpool, nn.MaxPool2d)
    assert _layer1_input_size(m, torch.randn(2, 3, 96, 96)) == (24, 24)


def test_resnet50_shape_keys_and_pyro_modules():
    m = build_encoder("resnet50")
    assert m.dim == 2048 and isinstance(m, torchvision.models.ResNet)
    assert all(isinstance(sub, PyroModule) for sub in m.modules())
    assert list(m.state_dict()) == _torchvision_keys(torchvision.models.resnet50)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 2048)


def test_every_submodule_is_a_pyro_module():
    m = build_encoder("resnet18", cifar_stem=True, projector=True, projector_dim=32)
    assert isinstance(m, ProjectedEncoder) and isinstance(m.backbone, torchvision.models.ResNet)
    assert all(isinstance(sub, PyroModule) for sub in m.modules())


@pytest.mark.parametrize("cifar_stem, size, kernel", [(False, 64, 7), (True, 28, 3)])
def test_one_input_channel(cifar_stem, size, kernel):
    m = resnet18(in_channels=1, cifar_stem=cifar_stem)
    assert m.conv1.weight.shape == (64, 1, kernel, kernel)
    assert m(torch.randn(2, 1, size, size)).shape == (2, 512)


def test_matches_torchvision_resnet18(param_mode):
    """Same seed -> same weights; a torchvision state dict (less fc) loads strictly; same features."""
    pyro.set_rng_seed(1)
    ref = torchvision.models.resnet18(weights=None)
    ref.fc = nn.Identity()
    pyro.set_rng_seed(1)
    m = resnet18()
    ours, theirs = m.state_dict(), ref.state_dict()
    assert list(ours) == list(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)

    x = torch.randn(2, 3, 64, 64)
    m(x)  # in the global mode this registers the parameters in the param store first
    store = pyro.get_param_store()
    if param_mode:
        assert "conv1.weight" not in store
    else:
        assert store["conv1.weight"] is m.conv1.weight

    pyro.set_rng_seed(2)
    other = torchvision.models.resnet18(weights=None)
    for mod in other.modules():  # non-trivial BatchNorm statistics for the eval-mode comparison
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    checkpoint = {k: v for k, v in other.state_dict().items() if not k.startswith("fc.")}
    m.load_state_dict(checkpoint, strict=True)
    other.fc = nn.Identity()
    with torch.no_grad():
        assert torch.equal(m.eval()(x), other.eval()(x))
        assert torch.equal(m.train()(x), other.train()(x))  # batch statistics, running stats updated
    assert torch.equal(m.layer4[1].bn2.running_mean, other.layer4[1].bn2.running_mean)
    if not param_mode:
        assert torch.equal(store["conv1.weight"], checkpoint["conv1.weight"])


def test_projection_head_layout():
    head = ProjectionHead(16)
    assert [type(layer) for layer in head] == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear, nn.LayerNorm]
    assert (head[0].in_features, head[0].out_features, head[3].out_features) == (16, 2048, 2048)
    assert head.dim == 2048 and head(torch.randn(3, 16)).shape == (3, 2048)
    assert ProjectionHead(8, hidden_dim=6, out_dim=4)(torch.randn(2, 8)).shape == (2, 4)


def test_projector_dims_and_backbone_checkpoint():
    m = build_encoder("resnet18", projector=True, projector_dim=64)
    assert m.dim == 64 and m.backbone.dim == 512
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 64)
    pyro.set_rng_seed(5)
    sd = {k: v for k, v in torchvision.models.resnet18(weights=None).state_dict().items() if k[:3] != "fc."}
    m.backbone.load_state_dict(sd, strict=True)
    assert torch.equal(m.backbone.conv1.weight, sd["conv1.weight"])
    small = build_encoder("small_cnn", in_channels=1, projector=True, projector_dim=16)
    assert small.dim == 16 and small(torch.randn(2, 1, 8, 8)).shape == (2, 16)


def test_with_projector_needs_dim():
    with pytest.raises(ValueError, match=r"\.dim"):
        with_projector(nn.Conv2d(3, 4, 1))


def test_gradients_flow(param_mode):
    m = build_encoder("resnet18", cifar_stem=True, projector=True, projector_dim=32)
    out = m(torch.randn(2, 3, 16, 16))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert m.backbone.conv1.weight.grad.abs().sum() > 0
    assert m.projector[0].weight.grad.abs().sum() > 0
    assert (len(pyro.get_param_store()) == 0) == param_mode


def test_channels_last():
    m = resnet18().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = m(x)
        assert torch.allclose(m(x.contiguous(memory_format=torch.channels_last)), y, atol=1e-5)
        m.to(memory_format=torch.channels_last)
        assert torch.allclose(m(x.contiguous(memory_format=torch.channels_last)), y, atol=1e-5)


@pytest.mark.parametrize(
    "arch, kwargs, match",
    [
        ("resnet34", {}, "unknown arch 'resnet34'; choose from"),
        ("small_cnn", {"norm": "layer"}, "unknown norm 'layer'; choose from"),
        ("small_cnn", {"cifar_stem": True}, "cifar_stem applies only to the ResNets"),
        ("resnet18", {"norm": "group"}, "supports only norm='batch'"),
        ("resnet50", {"final_relu": True}, "final_relu applies only to small_cnn"),
        ("resnet18", {"projector_dim": 128}, "projector_dim applies only with projector=True"),
        ("resnet18", {"projector": True, "projector_dim": 0}, "projector_dim must be a positive int"),
        ("resnet18", {"in_channels": 0}, "in_channels must be a positive int"),
    ],
)
def test_build_encoder_errors(arch, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_encoder(arch, **kwargs)


def test_encoder_names():
    assert ENCODERS == ("small_cnn", "resnet18", "resnet50")
    with pytest.raises(ValueError, match="in_channels"):
        resnet18(in_channels=0)
    with pytest.raises(ValueError, match="out_dim"):
        ProjectionHead(4, out_dim=0)


def test_constructor_options():
    with torch.device("meta"):  # structure only
        m = resnet50(in_channels=1, cifar_stem=True)
    assert m.dim == 2048 and m.conv1.weight.shape == (64, 1, 3, 3)
    assert isinstance(m.maxpool, nn.Identity)
    zero = resnet18(zero_init_residual=True)
    assert all((block.bn2.weight == 0).all() for layer in (zero.layer1, zero.layer4) for block in layer)


def test_plugs_into_vje(param_mode):
    """Nested in the VJE PyroModule before its first call; the loss reaches the backbone."""
    encoder = build_encoder("resnet18", cifar_stem=True, projector=True, projector_dim=16)
    vje = VJE(encoder, InferenceNetwork(encoder.dim, 8))
    vje.loss(torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)).backward()
    assert encoder.backbone.conv1.weight.grad.abs().sum() > 0
    names = set(pyro.get_param_store())
    assert ("encoder.backbone.conv1.weight" in names) != param_mode
