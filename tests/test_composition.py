"""Randomly composed models from bnn_tf's public layers convert and run on LCE's default kernel.

A seeded generator stacks blocks drawn from every method (ReCU convs with
strides, groups and dilation; EBConv with experts and groups; MeliusNet
dense/improvement blocks and transitions; XNOR-Net(++) convs; Bi-Real,
ReActNet and IR-Net blocks; pooling; shortcuts; BatchNorm; a binary
QuantDense head). Each model is trained a few steps on real Fashion-MNIST
images (resized to the model's input, grey tiled to RGB), exported
(`ebconv_export.export_model`), converted (`converters.convert`: grouped
binary convs split for the default kernel, binary dense rewritten) and run on
LCE's default kernel, the one ARM devices and the Android AAR use. It must
agree with Keras on ≥ 99.9 % of the test images, every quantized layer must
be on a binary kernel as the lint predicted, and the report must say the
default kernel runs the model. Three seeds in the default run, 30 more in
the slow suite; a failure prints the seed and the model summary.
"""

from __future__ import annotations

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from bnn_tf import converters
from bnn_tf.methods import bireal, ebconv, ebconv_export, melius, reactnet, recu, xnor
from bnn_tf.methods.shortcuts import ZeroPadShortcut

# Chosen so the default run covers every block kind and, between them, a grouped
# ReCUConv2D (seed 2: groups=4) and a grouped EBConv2D (seed 18: groups=2), the
# layers whose split for the default kernel issue 16 is about; the generator test
# below fails if a change to the generator loses either.
FAST_SEEDS = (1, 2, 18)
SLOW_SEEDS = tuple(range(100, 130))
TRAIN_IMAGES, BATCH = 256, 32
# ≥ 99.9 % agreement on these many images means no image may differ. The default
# kernel is the slow one on x86_64 (≈ 5–50 ms per image here), hence the sizes.
TEST_IMAGES = {"fast": 300, "slow": 500}
SIZES = {"fast": (16,), "slow": (16, 24)}
MIN_AGREEMENT = 0.999
SIGN = dict(
    input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip"
)


def _bn(x, name):
    return tf.keras.layers.BatchNormalization(momentum=0.8, name=name)(x)


def _divisors(n: int, options=(1, 2, 4)) -> list[int]:
    return [g for g in options if n % g == 0]


# Each block: (x, rng, name) -> x. Channel counts stay multiples of 16.
def _recu_block(x, rng, name):
    cin = int(x.shape[-1])
    filters = int(rng.choice([32, 64]))
    strides = int(rng.choice([1, 2])) if x.shape[1] >= 8 else 1
    dilation = int(rng.choice([1, 2])) if strides == 1 and x.shape[1] >= 8 else 1
    groups = int(rng.choice([g for g in _divisors(cin) if filters % g == 0]))
    y = recu.ReCUConv2D(
        filters, 3, strides=strides, dilation_rate=dilation, groups=groups, padding="same",
        name=f"{name}_recu",
    )(x)  # fmt: skip
    y = _bn(y, f"{name}_bn")
    if strides == 1 and filters == cin and rng.random() < 0.5:
        y = tf.keras.layers.Add(name=f"{name}_add")([y, x])
    return y


def _ebconv_block(x, rng, name):
    cin = int(x.shape[-1])
    filters = int(rng.choice([32, 64]))
    groups = int(rng.choice([g for g in _divisors(cin, (1, 2)) if filters % g == 0]))
    strides = int(rng.choice([1, 2])) if x.shape[1] >= 8 else 1
    y = ebconv.EBConv2D(
        filters, 3, num_experts=int(rng.choice([1, 2, 4])), groups=groups, strides=strides,
        name=f"{name}_eb",
    )(x)  # fmt: skip
    return _bn(y, f"{name}_bn")


def _melius_block(x, rng, name):
    x = melius.melius_block(x, name=name, growth_rate=32)
    if rng.random() < 0.4 and x.shape[1] >= 8:
        width = int(x.shape[-1])
        x = melius.transition(x, melius.round_to_multiple(width * 0.75), name=f"{name}_tr")
    return x


def _xnor_block(x, rng, name):
    y = lq.layers.QuantConv2D(
        int(rng.choice([32, 64])), 3, padding="same", pad_values=1.0, use_bias=False,
        input_quantizer="ste_sign", kernel_quantizer="xnor_weight", name=f"{name}_conv",
    )(x)  # fmt: skip
    y = xnor.XnorScale(mode=str(rng.choice(["channel", "factorised"])), name=f"{name}_scale")(y)
    return _bn(y, f"{name}_bn")


def _bireal_block(x, rng, name):
    cin = int(x.shape[-1])
    strides = int(rng.choice([1, 2])) if x.shape[1] >= 8 else 1
    shortcut = str(rng.choice(["conv", "pad", "duplicate"]))
    filters = 2 * cin if shortcut == "duplicate" and cin <= 32 else cin
    if filters == cin and strides == 1:
        shortcut = "conv"
    return bireal.bireal_block(
        x, filters, strides=strides, shortcut=shortcut, kernel_constraint="weight_clip", name=name
    )


def _reactnet_block(x, rng, name):
    cin = int(x.shape[-1])
    return bireal.bireal_block(
        x, cin, strides=1, input_quantizer="approx_sign", kernel_constraint="weight_clip",
        pre=lambda n: reactnet.RSignThreshold(name=n), post=lambda n: reactnet.RPReLU(name=n),
        name=name,
    )  # fmt: skip


def _irnet_block(x, rng, name):
    cin = int(x.shape[-1])
    strides = int(rng.choice([1, 2])) if x.shape[1] >= 8 else 1
    filters = int(rng.choice([cin, 2 * cin])) if cin <= 32 else cin
    y = lq.layers.QuantConv2D(
        filters, 3, strides=strides, padding="same", pad_values=1.0, use_bias=False,
        input_quantizer="ede_sign", kernel_quantizer="libra_pb_weight", name=f"{name}_conv",
    )(x)  # fmt: skip
    y = _bn(y, f"{name}_bn")
    skip = ZeroPadShortcut(filters, strides, name=f"{name}_skip")(x)
    return tf.keras.layers.Add(name=f"{name}_add")([y, skip])


def _pool_block(x, rng, name):
    if x.shape[1] < 8:
        return x
    pool = tf.keras.layers.MaxPool2D if rng.random() < 0.5 else tf.keras.layers.AveragePooling2D
    return pool(2, name=f"{name}_pool")(x)


BLOCKS = {
    "recu": _recu_block,
    "ebconv": _ebconv_block,
    "melius": _melius_block,
    "xnor": _xnor_block,
    "bireal": _bireal_block,
    "reactnet": _reactnet_block,
    "irnet": _irnet_block,
    "pool": _pool_block,
}


def _draw_plan(rng: np.random.Generator, sizes) -> tuple[int, list[str]]:
    size = int(rng.choice(sizes))
    return size, [str(k) for k in rng.choice(list(BLOCKS), size=int(rng.integers(2, 5)))]


def block_kinds(seed: int, sizes=(16, 24)) -> list[str]:
    """The blocks `random_model(seed, sizes)` stacks, without building it."""
    return _draw_plan(np.random.default_rng(seed), sizes)[1]


def random_model(seed: int, sizes=(16, 24)) -> tuple[tf.keras.Model, list[str]]:
    """A random composition (and its block names) from `seed`, input size drawn from `sizes`."""
    rng = np.random.default_rng(seed)
    tf.keras.utils.set_random_seed(seed)
    size, kinds = _draw_plan(rng, sizes)
    inputs = tf.keras.Input((size, size, 3))
    x = tf.keras.layers.Conv2D(32, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = _bn(x, "stem_bn")
    for i, kind in enumerate(kinds):
        x = BLOCKS[kind](x, rng, f"b{i}_{kind}")
    x = tf.keras.layers.GlobalAveragePooling2D(name="gap")(x)
    if rng.random() < 0.5:
        x = lq.layers.QuantDense(64, use_bias=False, name="qdense", **SIGN)(x)
        x = _bn(x, "qdense_bn")
    outputs = tf.keras.layers.Dense(10, name="head")(x)
    return tf.keras.Model(inputs, outputs, name=f"composed_{seed}"), kinds


@pytest.fixture(scope="module")
def images(fmnist):
    from bnn_tf import data

    def prepare(x, size):
        x = tf.image.resize(data.preprocess(x), (size, size)).numpy()
        return np.tile(x, (1, 1, 1, 3))

    cache = {}

    def get(size: int, tier: str):
        if (size, tier) not in cache:
            cache[size, tier] = (
                prepare(fmnist.x_train[:TRAIN_IMAGES], size),
                fmnist.y_train[:TRAIN_IMAGES],
                prepare(fmnist.x_test[: TEST_IMAGES[tier]], size),
            )
        return cache[size, tier]

    return get


def _summary(model: tf.keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lines.append, line_length=110)
    return "\n".join(lines)


def check_composition(seed: int, images, tier: str) -> None:
    model, kinds = random_model(seed, SIZES[tier])
    where = f"seed {seed}, blocks {kinds}"
    try:
        x_train, y_train, x_test = images(int(model.input_shape[1]), tier)
        model.compile(
            tf.keras.optimizers.Adam(1e-2),
            tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(x_train, y_train, batch_size=BATCH, epochs=1, verbose=0)
        exported = ebconv_export.export_model(model)
        dense_rewritten = converters.rewrite_binary_dense(exported)
        lint = converters.lint(dense_rewritten)
        flatbuffer = converters.convert(dense_rewritten)
        report = converters.conversion_report(dense_rewritten, flatbuffer, lint_report=lint)
        assert report.lint_mismatches == [], f"lint mismatches: {report.lint_mismatches}"
        assert report.fallbacks == [], f"quantized layers on float kernels: {report.fallbacks}"
        float_unmapped = [u for u in report.unmapped_ops if u["op"] != "FULLY_CONNECTED"]
        assert float_unmapped == [], f"MAC ops the report maps to no layer: {float_unmapped}"
        assert "default" in report.kernels, report.format()
        result = converters.verify(
            model, flatbuffer, x_test, kernel="default", compare_kernels=False
        )
        assert result.kernel == "default"
        assert result.top1_agreement >= MIN_AGREEMENT, result.format()
    except Exception as exc:
        raise AssertionError(f"{where}: {type(exc).__name__}: {exc}\n{_summary(model)}") from exc


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_random_composition_runs_on_the_default_kernel(seed, images):
    check_composition(seed, images, "fast")


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_random_composition_runs_on_the_default_kernel_slow(seed, images):
    check_composition(seed, images, "slow")


def test_generator_is_deterministic_and_covers_every_block():
    first, kinds = random_model(7)
    again, kinds_again = random_model(7)
    assert kinds == kinds_again
    assert [layer.name for layer in first.layers[1:]] == [layer.name for layer in again.layers[1:]]
    assert first.count_params() == again.count_params()
    assert block_kinds(7) == kinds
    covered = {k for seed in FAST_SEEDS for k in block_kinds(seed, SIZES["fast"])}
    covered |= {k for seed in SLOW_SEEDS for k in block_kinds(seed, SIZES["slow"])}
    assert covered == set(BLOCKS), set(BLOCKS) - covered


def test_default_seeds_include_grouped_recu_and_ebconv():
    fast = {k for seed in FAST_SEEDS for k in block_kinds(seed, SIZES["fast"])}
    assert fast == set(BLOCKS), set(BLOCKS) - fast
    grouped = set()
    for seed in FAST_SEEDS:
        tf.keras.backend.clear_session()
        model, _ = random_model(seed, SIZES["fast"])
        grouped |= {
            type(layer).__name__
            for layer in model.layers
            if isinstance(layer, (recu.ReCUConv2D, ebconv.EBConv2D)) and layer.groups > 1
        }
    assert grouped == {"ReCUConv2D", "EBConv2D"}, grouped
