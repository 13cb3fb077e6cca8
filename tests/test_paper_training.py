"""Each zoo model's `training` spec (how its paper trains it) is a coherent set-up.

`bnn_tf.models.info(name).training` holds `OptimizerConfig` fields plus a
`"why"`; `bnn-tf train NAME` uses it by default. Compiling a model's default
build with it must not raise a `SetupWarning` (e.g. a weight clip under Bop),
and methods whose scales act on latent weights (XNOR-Net's α, IR-Net's
Libra-PB, XNOR-Net++'s Γ, EBConv's latent mixing) must not be on Bop, which
keeps weights at ±1 and makes those scales constant.

ImageNet-size models ("large" tag, `-m slow`) are built at 64×64×3: the check reads
layers and constraints, not activations.
"""

from __future__ import annotations

import warnings

import pytest
import tensorflow as tf

from bnn_tf import experiment, introspect, optimizers, training
from bnn_tf import models as zoo
from bnn_tf.methods.ebconv import EBConv2D
from bnn_tf.methods.irnet import LibraPBWeight
from bnn_tf.methods.xnor import XnorScale, XnorWeight

LATENT_SCALES = (XnorWeight, LibraPBWeight, XnorScale)


# ImageNet-size models take 10–20 s each to build on 2 cores; their specs and
# schedules are the same objects as their small siblings' (covered in the default
# run), so they run with `-m slow`.
PARAMS = [
    pytest.param(name, marks=[pytest.mark.slow] if "large" in zoo.info(name).tags else [])
    for name in zoo.available()
]


def _build(name: str) -> tf.keras.Model:
    info = zoo.info(name)
    if "large" in info.tags:
        size = max(64, info.accepts["min_size"])  # XNOR-Net's fc6 needs 217 px
        return zoo.build(name, input_shape=(size, size, 3), num_classes=10)
    return zoo.build(name)


def _config(name: str) -> optimizers.OptimizerConfig:
    spec = {k: v for k, v in zoo.info(name).training.items() if k != "why"}
    return optimizers.OptimizerConfig.from_dict(spec)


@pytest.mark.parametrize("name", PARAMS)
def test_paper_training_spec_compiles_without_setup_warning(name):
    info = zoo.info(name)
    assert info.training, f"{name} has no training spec"
    assert isinstance(info.training.get("why"), str) and info.training["why"]
    config = _config(name)
    config.validate()
    model = _build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", optimizers.SetupWarning)
        training.compile_model(model, optimizer_config=config, steps_per_epoch=10, epochs=2)
    latent = introspect.find(model, LATENT_SCALES) or [
        layer for layer in introspect.find(model, EBConv2D) if layer.mixing == "latent"
    ]
    if latent:
        assert config.name not in ("bop", "bop2"), (
            f"{name}: {type(latent[0]).__name__} acts on latent weights; Bop makes it constant"
        )


@pytest.mark.parametrize("name", PARAMS)
def test_plain_default_compile_follows_the_model(name):
    """`compile_model(zoo.build(name))`, the Python default, raises no SetupWarning either.

    And it does not put a latent-weight build (weight clip, or a scale acting on
    latent weights) on Bop, which would ignore the clip or freeze the scale.
    """
    model = _build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", optimizers.SetupWarning)
        training.compile_model(model)
    if introspect.latent_weight_layers(model):
        assert not optimizers.uses_bop(model.optimizer), f"{name}: latent-weight build on Bop"


def test_build_and_compile_uses_the_papers_optimizer():
    """The Python route to `bnn-tf train NAME`'s default: the registered optimizer."""
    model = experiment.build_and_compile("birealnet_small", steps_per_epoch=10, epochs=2)
    assert not optimizers.uses_bop(model.optimizer)
    assert _config("birealnet_small").name == "adam"
    bop = experiment.build_and_compile("bnn_small", steps_per_epoch=10, epochs=2)
    assert optimizers.uses_bop(bop.optimizer)


def test_the_check_can_fail():
    """A weight-clipped model on Bop warns: the test above would catch a bad spec."""
    model = zoo.build("birealnet_small")
    with warnings.catch_warnings(), pytest.raises(optimizers.SetupWarning):
        warnings.simplefilter("error", optimizers.SetupWarning)
        training.compile_model(
            model, optimizer_config=optimizers.OptimizerConfig("bop"), steps_per_epoch=10, epochs=2
        )
