"""Every registered bnn_tf object round-trips through `.keras` (safe_mode) and `.h5`.

Driven by Keras' registry: every `tf.keras.utils.get_custom_objects()` entry
whose key starts with `bnn_tf>` (layers, quantizers, activations,
constraints, schedules, callbacks, optimizers) and every string alias that
names a bnn_tf object. Registering a new object adds it here; an object this
file cannot build fails `test_every_registered_object_has_an_example`, naming
the missing example argument.

Models are saved here and loaded back in FRESH processes (one per import
set, so the whole file costs two interpreter start-ups): objects of the
library with only `import bnn_tf`, objects of `bnn_tf.converters` with
`import bnn_tf.converters` (and of `bnn_tf.models` with `import bnn_tf.models`). The reloaded model must give the same outputs.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import bnn_tf
from bnn_tf import converters

# Import every module of the package, so the cases below do not depend on what other
# test files happened to import first (the parametrisation is built at collection).
for _module in pkgutil.walk_packages(bnn_tf.__path__, "bnn_tf."):
    importlib.import_module(_module.name)

FORMATS = ("keras", "h5")
# Values for the required constructor arguments of registered classes.
EXAMPLE_ARGS = {
    "filters": 64,
    "kernel_size": 3,
    "units": 16,
    "groups": 2,
    "epochs": 3,
    "num_experts": 2,
}


def _registered() -> dict[str, object]:
    return {k: v for k, v in tf.keras.utils.get_custom_objects().items() if k.startswith("bnn_tf>")}


def _aliases() -> dict[str, object]:
    """String names (no `bnn_tf>` prefix) that resolve to a bnn_tf object."""
    return {
        k: v
        for k, v in tf.keras.utils.get_custom_objects().items()
        if ">" not in k and getattr(v, "__module__", "").startswith("bnn_tf")
    }


def kind_of(obj) -> str:
    if not isinstance(obj, type):
        return "activation" if callable(obj) else "unknown"
    for kind, base in (
        ("quantizer", lq.quantizers.Quantizer),
        ("layer", tf.keras.layers.Layer),
        ("optimizer", (tf.keras.optimizers.legacy.Optimizer, tf.keras.optimizers.Optimizer)),
        ("callback", tf.keras.callbacks.Callback),
        ("schedule", tf.keras.optimizers.schedules.LearningRateSchedule),
        ("constraint", tf.keras.constraints.Constraint),
        ("regularizer", tf.keras.regularizers.Regularizer),
        ("initializer", tf.keras.initializers.Initializer),
    ):
        if issubclass(obj, base):
            return kind
    return "unknown"


def _required(cls: type) -> list[str]:
    """Required constructor arguments, following `*args` pass-throughs to the base class."""
    required = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = list(inspect.signature(klass.__init__).parameters.values())
        required += [
            p.name
            for p in params
            if p.name != "self"
            and p.default is inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if not any(p.kind == p.VAR_POSITIONAL for p in params):
            break
    return required


def instantiate(cls: type, **overrides):
    kwargs = {}
    for name in _required(cls):
        if name in overrides:
            continue
        if name not in EXAMPLE_ARGS:
            raise LookupError(
                f"{cls.__name__}: no example value for required argument {name!r}; "
                "add one to EXAMPLE_ARGS (or a factory to FACTORIES)"
            )
        kwargs[name] = EXAMPLE_ARGS[name]
    return cls(**{**kwargs, **overrides})


def _group_split_layer():
    layer = lq.layers.QuantConv2D(
        64, 3, groups=2, padding="same", pad_values=1.0, use_bias=False,
        input_quantizer="ste_sign", kernel_quantizer="ste_sign", name="grouped",
    )  # fmt: skip
    layer.build((1, 8, 8, 32))
    layer(tf.zeros((1, 8, 8, 32)))  # gives the layer an input shape for split_layer
    return converters.split_grouped_convs(
        tf.keras.Sequential([tf.keras.Input((8, 8, 32), batch_size=1), layer])
    ).layers[0]


# Objects tf_keras cannot reload from a legacy .h5 file, with the reason: they are checked in
# the .keras format only, and `test_known_h5_gaps_still_fail` shows when that changes.
H5_GAPS = {
    "bnn_tf>clip_by_value_activation": "tf_keras saves a registered activation *function* in "
    "the new config format ({'class_name': 'function', ...}) but its .h5 loader reads it with "
    "the legacy one ('Unknown activation function: function'); kept as a function because "
    "larq-zoo's DoReFaNet graph (layer for layer, tests/test_larq_zoo_compat.py) uses one",
}

# Classes that need more than their constructor's required arguments.
FACTORIES = {"GroupSplitConv2D": _group_split_layer}


def _randomise(model: tf.keras.Model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Kernels ±: signs vary; vectors/scalars in [0.5, 1]: valid variances, τ, scales.
    model.set_weights([
        rng.uniform(-1, 1, w.shape) if w.ndim >= 2 else rng.uniform(0.5, 1.0, w.shape)
        for w in model.get_weights()
    ])  # fmt: skip


def _layer_model(cls: type) -> tf.keras.Model:
    errors = []
    for shape in ((8, 8, 32), (32,)):
        inputs = tf.keras.Input(shape, batch_size=1)
        try:
            layer = FACTORIES[cls.__name__]() if cls.__name__ in FACTORIES else instantiate(cls)
            out = layer(inputs)
        except LookupError:
            raise
        except Exception as exc:  # noqa: BLE001  try the next input rank
            errors.append(f"{shape}: {type(exc).__name__}: {exc}")
            continue
        return tf.keras.Model(inputs, out)
    raise AssertionError(f"{cls.__name__} builds on no test input: {errors}")


def _quantizer_model(cls: type) -> tf.keras.Model:
    inputs = tf.keras.Input((8, 8, 32), batch_size=1)
    x = lq.layers.QuantConv2D(
        16, 3, padding="same", pad_values=1.0, use_bias=False,
        input_quantizer=instantiate(cls), kernel_quantizer=instantiate(cls),
    )(inputs)  # fmt: skip
    return tf.keras.Model(inputs, x)


def _activation_model(fn) -> tf.keras.Model:
    inputs = tf.keras.Input((8, 8, 4), batch_size=1)
    return tf.keras.Model(inputs, tf.keras.layers.Activation(fn)(inputs))


def _optimizer_model(cls: type) -> tf.keras.Model:
    inputs = tf.keras.Input((8,), batch_size=4)
    outputs = lq.layers.QuantDense(4, kernel_quantizer="ste_sign", input_quantizer="ste_sign")(
        inputs
    )
    model = tf.keras.Model(inputs, outputs)
    model.compile(instantiate(cls), "mse")
    model.fit(np.ones((4, 8), np.float32), np.ones((4, 4), np.float32), verbose=0)
    return model


def _needs_import(obj) -> str:
    """The one import a user needs before loading a file holding `obj`."""
    for package in ("bnn_tf.converters", "bnn_tf.models"):
        if obj.__module__.startswith(package):
            return package
    return "bnn_tf"


def _cases() -> list[tuple[str, object]]:
    return sorted(_registered().items())


def _write_case(key: str, obj, folder: Path, index: int) -> dict:
    kind = kind_of(obj)
    case = {"key": key, "kind": kind, "import": _needs_import(obj)}
    stem = folder / f"case{index}"
    if kind in ("callback", "schedule", "constraint", "regularizer", "initializer"):
        config = tf.keras.utils.serialize_keras_object(instantiate(obj))
        case["config"] = json.loads(json.dumps(config))
        return case
    model = {
        "layer": _layer_model,
        "quantizer": _quantizer_model,
        "activation": _activation_model,
        "optimizer": _optimizer_model,
    }[kind](obj)
    if kind != "optimizer":
        _randomise(model, index)
    shapes = model.inputs[0].shape.as_list()
    x = np.random.default_rng(index).normal(size=[d or 1 for d in shapes]).astype(np.float32)
    outputs = model(x, training=False)
    outputs = [np.asarray(o) for o in (outputs if isinstance(outputs, list) else [outputs])]
    np.save(f"{stem}_x.npy", x)
    for j, o in enumerate(outputs):
        np.save(f"{stem}_y{j}.npy", o)
    case.update(stem=str(stem), outputs=len(outputs), files={})
    for fmt in FORMATS:
        if fmt == "h5" and key in H5_GAPS:
            continue
        path = f"{stem}.{fmt}"
        model.save(path)
        case["files"][fmt] = path
    if kind == "optimizer":
        case["optimizer"] = type(model.optimizer).__name__
    return case


# Runs in the fresh process: load every case, compare outputs, report errors as JSON.
_CHECKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import {module}
    import tensorflow as tf

    cases = json.load(open(sys.argv[1]))
    errors = {{}}
    for case in cases:
        key = case["key"]
        try:
            if "config" in case:
                obj = tf.keras.utils.deserialize_keras_object(case["config"])
                again = tf.keras.utils.serialize_keras_object(obj)
                if json.loads(json.dumps(again)) != case["config"]:
                    raise AssertionError(f"config changed: {{again}} != {{case['config']}}")
                continue
            x = np.load(case["stem"] + "_x.npy")
            want = [np.load(f"{{case['stem']}}_y{{j}}.npy") for j in range(case["outputs"])]
            for fmt, path in case["files"].items():
                kwargs = {{"safe_mode": True}} if fmt == "keras" else {{}}
                compile = case["kind"] == "optimizer"
                model = tf.keras.models.load_model(path, compile=compile, **kwargs)
                got = model(x, training=False)
                got = got if isinstance(got, list) else [got]
                for w, g in zip(want, got):
                    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-5)
                if compile and type(model.optimizer).__name__ != case["optimizer"]:
                    raise AssertionError(f"{{fmt}}: optimizer {{type(model.optimizer).__name__}}")
        except Exception as exc:
            errors[key] = errors.get(key, "") + f"{{type(exc).__name__}}: {{str(exc)[:500]}} "
    print("RESULT" + json.dumps(errors))
    """
)


@pytest.fixture(scope="module")
def fresh_process_errors(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("roundtrip")
    by_import: dict[str, list[dict]] = {}
    errors: dict[str, str] = {}
    for index, (key, obj) in enumerate(_cases()):
        try:
            case = _write_case(key, obj, folder, index)
        except Exception as exc:  # noqa: BLE001  reported by the per-object test
            errors[key] = f"could not build or save: {type(exc).__name__}: {exc}"
            continue
        by_import.setdefault(case["import"], []).append(case)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for module, cases in by_import.items():
        manifest = folder / f"{module}.json"
        manifest.write_text(json.dumps(cases))
        script = folder / f"check_{module}.py"
        script.write_text(_CHECKER.format(module=module))
        proc = subprocess.run(
            [sys.executable, str(script), str(manifest)],
            capture_output=True, text=True, env=env, timeout=600, check=False,
        )  # fmt: skip
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
        if not lines:
            raise AssertionError(f"fresh process ({module}) crashed:\n{proc.stderr[-3000:]}")
        errors.update(json.loads(lines[-1][len("RESULT") :]))
    return errors


def test_every_registered_object_has_an_example():
    kinds = {key: kind_of(obj) for key, obj in _registered().items()}
    assert "unknown" not in kinds.values(), {k: v for k, v in kinds.items() if v == "unknown"}
    # The registry really holds each family (a broken import would empty it silently).
    assert {"layer", "quantizer", "optimizer", "callback"} <= set(kinds.values())


@pytest.mark.parametrize("key", [key for key, _ in _cases()])
def test_round_trips_in_a_fresh_process(key, fresh_process_errors):
    assert key not in fresh_process_errors, fresh_process_errors[key]


@pytest.mark.parametrize(
    "key",
    [pytest.param(k, marks=pytest.mark.xfail(reason=r, strict=True)) for k, r in H5_GAPS.items()],
)
def test_known_h5_gaps_still_fail(key, tmp_path):
    obj = _registered()[key]
    model = {"activation": _activation_model, "layer": _layer_model}[kind_of(obj)](obj)
    model.save(tmp_path / "m.h5")
    x = np.random.default_rng(0).normal(size=(1, *model.inputs[0].shape[1:])).astype("float32")
    loaded = tf.keras.models.load_model(tmp_path / "m.h5")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)


@pytest.mark.parametrize("alias", sorted(_aliases()))
def test_string_alias_resolves(alias):
    obj = _aliases()[alias]
    if kind_of(obj) == "quantizer":
        assert isinstance(lq.quantizers.get(alias), obj)
        layer = lq.layers.QuantConv2D(8, 3, kernel_quantizer=alias, input_quantizer=alias)
        layer.build((None, 8, 8, 8))
        assert isinstance(layer.kernel_quantizer, obj) and isinstance(layer.input_quantizer, obj)
    else:
        assert tf.keras.utils.get_registered_object(alias) is obj


def test_every_quantizer_has_a_string_alias():
    quantizers = {obj for obj in _registered().values() if kind_of(obj) == "quantizer"}
    named = {obj for name, obj in _aliases().items() if name != getattr(obj, "__name__", "")}
    assert quantizers <= named, sorted(q.__name__ for q in quantizers - named)
