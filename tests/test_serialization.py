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
`import bnn_tf.converters` (and of `bnn_tf.models` with `import bnn_tf.models`).
The reloaded model must give the same outputs. Constraints, regularizers and
initializers are saved inside a layer (where a user's model holds them, and
where the legacy `.h5` loader resolves them by class name) and must come back
as the same object with the same config. Every small zoo model (not tagged
"large") is saved in both formats too and reloaded with only `import bnn_tf`.
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
from bnn_tf import models as zoo

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
    # An activation object (a class with `__call__`, like `ClipByValueActivation`).
    if any("__call__" in vars(klass) for klass in obj.__mro__[:-1]):
        return "activation"
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


# Classes that need more than their constructor's required arguments.
FACTORIES = {"GroupSplitConv2D": _group_split_layer}
# Layers that take more than one tensor: how to call them on the one test input.
WIRING = {
    # [wide map, narrow update]: the update is a 1×1 conv of the input to 8 channels
    "AddToLastChannels": lambda layer, x: layer([x, tf.keras.layers.Conv2D(8, 1)(x)]),
}


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
            out = WIRING[cls.__name__](layer, inputs) if cls.__name__ in WIRING else layer(inputs)
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
    if isinstance(fn, type):
        fn = instantiate(fn)
    inputs = tf.keras.Input((8, 8, 4), batch_size=1)
    return tf.keras.Model(inputs, tf.keras.layers.Activation(fn)(inputs))


# The layers tried as the host of a constraint, regularizer or initializer, each with the
# prefix of its weight's arguments (`kernel_regularizer`, ...); the first that builds
# with the object wins (a blur-pool initializer only fits a depthwise kernel).
HOSTS = (
    (lambda **kw: tf.keras.layers.Conv2D(16, 3, padding="same", name="host", **kw), "kernel"),
    (
        lambda **kw: tf.keras.layers.DepthwiseConv2D(3, padding="same", name="host", **kw),
        "depthwise",
    ),
)
HOSTED = ("constraint", "regularizer", "initializer")


def _hosted_model(obj, kind: str) -> tuple[tf.keras.Model, str]:
    """A one-layer model holding `obj`, and the layer attribute that holds it."""
    errors = []
    for host, prefix in HOSTS:
        attr = f"{prefix}_{kind}"
        inputs = tf.keras.Input((8, 8, 32), batch_size=1)
        try:
            outputs = host(**{attr: instantiate(obj)})(inputs)
        except LookupError:
            raise
        except Exception as exc:  # noqa: BLE001  try the next host
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        return tf.keras.Model(inputs, outputs), attr
    raise AssertionError(f"{obj.__name__} fits no host layer: {errors}")


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


def _save_outputs(model: tf.keras.Model, stem: Path, seed: int) -> int:
    shapes = model.inputs[0].shape.as_list()
    x = np.random.default_rng(seed).normal(size=[d or 1 for d in shapes]).astype(np.float32)
    outputs = model(x, training=False)
    outputs = [np.asarray(o) for o in (outputs if isinstance(outputs, list) else [outputs])]
    np.save(f"{stem}_x.npy", x)
    for j, o in enumerate(outputs):
        np.save(f"{stem}_y{j}.npy", o)
    return len(outputs)


def _save_model(model: tf.keras.Model, stem: Path) -> dict[str, str]:
    files = {}
    for fmt in FORMATS:
        files[fmt] = f"{stem}.{fmt}"
        model.save(files[fmt])
    return files


def _write_case(key: str, obj, folder: Path, index: int) -> dict:
    kind = kind_of(obj)
    case = {"key": key, "kind": kind, "import": _needs_import(obj)}
    stem = folder / f"case{index}"
    if kind in ("callback", "schedule", *HOSTED):
        config = tf.keras.utils.serialize_keras_object(instantiate(obj))
        case["config"] = json.loads(json.dumps(config))
    if kind in ("callback", "schedule"):
        return case
    if kind in HOSTED:
        model, attr = _hosted_model(obj, kind)
        held = getattr(model.get_layer("host"), attr)
        case["held"] = {"attr": attr, "class": type(held).__name__}
        case["held"]["config"] = json.loads(json.dumps(held.get_config()))
    else:
        model = {
            "layer": _layer_model,
            "quantizer": _quantizer_model,
            "activation": _activation_model,
            "optimizer": _optimizer_model,
        }[kind](obj)
    if kind not in ("optimizer", "initializer"):
        # An initializer's own values are what the reloaded kernel must keep.
        _randomise(model, index)
    if kind == "regularizer":
        case["held"]["loss"] = float(tf.add_n(model.losses))
    case.update(stem=str(stem), outputs=_save_outputs(model, stem, index))
    case["files"] = _save_model(model, stem)
    if kind == "optimizer":
        case["optimizer"] = type(model.optimizer).__name__
    return case


def _small_zoo_models() -> list[str]:
    return [name for name in zoo.available() if "large" not in zoo.info(name).tags]


def _write_zoo_case(name: str, folder: Path, index: int) -> dict:
    tf.keras.backend.clear_session()
    model = zoo.build(name)
    # Random weights and BN statistics: a weight or statistic that does not load
    # back changes the outputs.
    _randomise(model, index)
    stem = folder / f"zoo_{name}"
    case = {"key": f"zoo:{name}", "kind": "model", "import": "bnn_tf", "stem": str(stem)}
    case["outputs"] = _save_outputs(model, stem, index)
    case["files"] = _save_model(model, stem)
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
            if "files" not in case:
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
                    # deep zoo models with random weights have large logits
                    atol = 1e-5 * max(1.0, float(np.abs(w).max()))
                    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=atol)
                held = case.get("held")
                if held:
                    obj = getattr(model.get_layer("host"), held["attr"])
                    name = type(obj).__name__
                    if name != held["class"]:
                        raise AssertionError(f"{{fmt}}: {{held['attr']}} is a {{name}}")
                    config = json.loads(json.dumps(obj.get_config()))
                    if config != held["config"]:
                        raise AssertionError(f"{{fmt}}: config {{config}} != {{held['config']}}")
                    if "loss" in held:
                        loss = float(tf.add_n(model.losses))
                        np.testing.assert_allclose(loss, held["loss"], rtol=1e-5)
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
    for index, name in enumerate(_small_zoo_models()):
        try:
            case = _write_zoo_case(name, folder, index)
        except Exception as exc:  # noqa: BLE001  reported by the per-model test
            errors[f"zoo:{name}"] = f"could not build or save: {type(exc).__name__}: {exc}"
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


@pytest.mark.parametrize("name", _small_zoo_models())
def test_small_zoo_model_round_trips_in_a_fresh_process(name, fresh_process_errors):
    key = f"zoo:{name}"
    assert key not in fresh_process_errors, fresh_process_errors[key]


def test_every_small_zoo_model_is_checked():
    names = _small_zoo_models()
    # the tag filter must not empty the list (a typo in the tag would)
    assert "bnn_small" in names and len(names) >= 10
    assert not any("large" in zoo.info(name).tags for name in names)


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


def test_every_registered_class_resolves_by_its_class_name():
    # what tf_keras's legacy .h5 loader looks a nested object up by
    classes = {obj for obj in _registered().values() if isinstance(obj, type)}
    unresolved = [
        cls.__name__
        for cls in classes
        if tf.keras.utils.get_registered_object(cls.__name__) is not cls
    ]
    assert unresolved == []


def test_a_bare_name_may_not_shadow_keras_or_another_object():
    from bnn_tf.methods._aliases import register_names

    before = dict(tf.keras.utils.get_custom_objects())
    with pytest.raises(ValueError, match="Keras built-in"):
        register_names(object(), "Activation")
    with pytest.raises(ValueError, match="already names"):
        register_names(object(), "bnn_plus")
    assert tf.keras.utils.get_custom_objects() == before
