"""Optimizers for binarized networks: Bop for binary kernels, Adam for the rest.

Bop (Helwegen et al., NeurIPS 2019, "Latent Weights Do Not Exist") keeps an
exponential moving average of each binary weight's gradient,
`m ← m + γ (g − m)`, and flips the weight when `w · m > τ`. Everything that
is not a binary kernel (BatchNorm, float first/last layers, scales) is
trained by a latent-weight optimizer. larq's `CaseOptimizer` routes each
variable to the first optimizer whose predicate claims it.

`Bop2ndOrder` ("Bop and Beyond", Suarez-Ramirez et al.) also tracks the
second moment, `v ← v + σ (g² − v)`, and flips when
`w · m / (√v + ε) > τ`: the threshold becomes unit-free (a signal-to-noise
ratio) instead of being in raw gradient units.

One way to build either: `make_optimizer(OptimizerConfig(...), steps_per_epoch=..., epochs=...)`.
γ, τ and the learning rate can each follow a schedule (`ScheduleConfig`:
constant, step, linear or cosine, counted in epochs). `check_setup(model, optimizer)`
warns about contradictory set-ups (a Bop-trained kernel with a weight clip or
L2; a binary kernel that Bop does not claim).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import larq as lq
import tensorflow as tf

from bnn_tf import introspect
from bnn_tf.errors import ConfigError

Schedule = float | tf.keras.optimizers.schedules.LearningRateSchedule
OPTIMIZERS = ("bop", "bop2", "adam")
SCHEDULES = ("constant", "step", "linear", "cosine")


@dataclass(frozen=True)
class BopAdamConfig:
    """Hyper-parameters of `bop_adam`; defaults tuned for the zoo's small models.

    γ and τ are in raw gradient units, so they depend on batch size and loss
    scaling: these defaults assume a mean-reduced cross-entropy and batch 128.
    """

    threshold: float = 1e-6
    gamma: float = 1e-3
    learning_rate: float = 1e-3

    def to_dict(self) -> dict:
        return asdict(self)


def bop_adam(
    *,
    threshold: Schedule = BopAdamConfig.threshold,
    gamma: Schedule = BopAdamConfig.gamma,
    learning_rate: Schedule = BopAdamConfig.learning_rate,
) -> lq.optimizers.CaseOptimizer:
    """Bop for binary kernels (larq precision 1) + legacy Adam for everything else.

    Args:
        threshold: Bop's flip threshold τ (a float or a Keras schedule over steps).
        gamma: Bop's adaptivity rate γ (moving-average rate of the gradient).
        learning_rate: Adam's learning rate (a float or a Keras schedule).
    """
    return lq.optimizers.CaseOptimizer(
        (lq.optimizers.Bop.is_binary_variable, lq.optimizers.Bop(threshold=threshold, gamma=gamma)),
        default_optimizer=tf.keras.optimizers.legacy.Adam(learning_rate),
    )


@tf.keras.utils.register_keras_serializable(package="bnn_tf")
class Bop2ndOrder(tf.keras.optimizers.legacy.Optimizer):
    """Bop with second-moment normalised flips (Suarez-Ramirez et al., "Bop and Beyond").

    Per binary weight w ∈ {−1, +1}, with gradient g:

        m ← m + γ (g − m)            (first moment, as in Bop)
        v ← v + σ (g² − v)           (second moment)
        flip w  when  w · m / (√v + ε) > τ

    Like Bop there are no latent weights and no bias correction. Use it inside
    `larq.optimizers.CaseOptimizer` with `Bop2ndOrder.is_binary_variable`
    (`make_optimizer(OptimizerConfig(name="bop2"))` does this). γ, σ and τ may
    be Keras schedules (evaluated at this optimizer's own step count).

    Args:
        threshold: τ, a unit-free signal-to-noise threshold.
        gamma: γ, rate of the first-moment average.
        sigma: σ, rate of the second-moment average.
        epsilon: ε in the denominator.
    """

    _HAS_AGGREGATE_GRAD = True

    def __init__(
        self,
        threshold: Schedule = 1e-6,
        gamma: Schedule = 1e-6,
        sigma: Schedule = 1e-2,
        epsilon: float = 1e-10,
        name: str = "Bop2ndOrder",
        **kwargs: Any,
    ):
        super().__init__(name=name, **kwargs)
        self._set_hyper("threshold", threshold)
        self._set_hyper("gamma", gamma)
        self._set_hyper("sigma", sigma)
        self.epsilon = epsilon

    def _create_slots(self, var_list):
        for var in var_list:
            self.add_slot(var, "m")
            self.add_slot(var, "v")

    def _decayed(self, name: str, dtype):
        hyper = self._get_hyper(name, dtype)
        if isinstance(hyper, tf.keras.optimizers.schedules.LearningRateSchedule):
            hyper = tf.cast(hyper(tf.cast(self.iterations, dtype)), dtype)
        return hyper

    def _resource_apply_dense(self, grad, var, apply_state=None):
        dtype = var.dtype.base_dtype
        gamma, sigma = self._decayed("gamma", dtype), self._decayed("sigma", dtype)
        threshold = self._decayed("threshold", dtype)
        m = self.get_slot(var, "m").assign_add(gamma * (grad - self.get_slot(var, "m")))
        v = self.get_slot(var, "v").assign_add(sigma * (tf.square(grad) - self.get_slot(var, "v")))
        # Flip where w·m/(√v+ε) > τ; keep the sign otherwise. larq.math.sign maps 0 → +1,
        # so a latent (not yet ±1) kernel is snapped to ±1 on its first step, as in larq's Bop.
        flip = var * m / (tf.sqrt(v) + self.epsilon) > threshold
        return var.assign(tf.where(flip, -lq.math.sign(var), lq.math.sign(var))).op

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        raise NotImplementedError("Bop2ndOrder trains dense binary kernels only.")

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "threshold": self._serialize_hyperparameter("threshold"),
            "gamma": self._serialize_hyperparameter("gamma"),
            "sigma": self._serialize_hyperparameter("sigma"),
            "epsilon": self.epsilon,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for hyper in ("threshold", "gamma", "sigma"):
            if isinstance(config.get(hyper), dict):
                config[hyper] = tf.keras.optimizers.schedules.deserialize(
                    config[hyper], custom_objects=custom_objects
                )
        return cls(**config)

    is_binary_variable = staticmethod(lq.optimizers.Bop.is_binary_variable)


# larq's CaseOptimizer.get_config stores each inner optimizer under its `name` and
# deserialises it by that name: `import bnn_tf` registers the bare class name
# (`methods.register_package_names`).


# ----------------------------------------------------------------- schedules


@dataclass(frozen=True)
class ScheduleConfig:
    """How a hyper-parameter (γ, τ or a learning rate) changes over training.

    Counted in epochs, turned into a per-step Keras schedule by `make_schedule`.

    - `constant`: the initial value throughout.
    - `step`: multiplied by `factor` every `every_epochs` epochs (Bop's CIFAR
      recipe: γ ×0.1 every 100 epochs).
    - `linear`: straight line from the initial value to `final` (Bop's ImageNet
      recipe: γ 1e-4 → 1e-6).
    - `cosine`: half cosine from the initial value to `final`.
    """

    kind: str = "constant"
    final: float = 0.0
    factor: float = 0.1
    every_epochs: int = 1

    def validate(self) -> None:
        if self.kind not in SCHEDULES:
            raise ConfigError(
                f"unknown schedule {self.kind!r}; choose one of {', '.join(SCHEDULES)}."
            )
        if self.every_epochs < 1:
            raise ConfigError(f"every_epochs must be ≥ 1 (got {self.every_epochs}).")
        if self.final < 0 or self.factor <= 0:
            raise ConfigError(
                f"schedule final must be ≥ 0 and factor > 0 (got {self.final}, {self.factor})."
            )


def make_schedule(
    initial: float,
    schedule: ScheduleConfig | str | None,
    *,
    steps_per_epoch: int | None,
    epochs: int | None,
) -> Schedule:
    """A float (constant) or a built-in Keras schedule over optimizer steps.

    Built-in Keras schedules only, so a saved optimizer reloads without custom objects.

    Raises:
        ConfigError: a non-constant schedule without `steps_per_epoch` and `epochs`.
    """
    if schedule is None or isinstance(schedule, str):
        schedule = ScheduleConfig(kind=schedule or "constant")
    schedule.validate()
    if schedule.kind != "constant" and not (steps_per_epoch and epochs):
        raise ConfigError(
            f"a {schedule.kind} schedule needs steps_per_epoch and epochs (got {steps_per_epoch}, "
            f"{epochs}). Fix: pass both, or use ScheduleConfig('constant')."
        )
    if schedule.kind == "constant":
        return float(initial)
    assert steps_per_epoch is not None and epochs is not None
    total = max(1, steps_per_epoch * epochs)
    sched = tf.keras.optimizers.schedules
    if schedule.kind == "step":
        return sched.ExponentialDecay(
            initial, steps_per_epoch * schedule.every_epochs, schedule.factor, staircase=True
        )
    if schedule.kind == "linear":
        return sched.PolynomialDecay(initial, total, end_learning_rate=schedule.final, power=1.0)
    return sched.CosineDecay(initial, total, alpha=schedule.final / initial if initial else 0.0)


# ---------------------------------------------------------------- optimizers


@dataclass(frozen=True)
class OptimizerConfig:
    """Which optimizer trains what, with which schedules.

    - `bop`: larq's Bop on binary kernels + Adam on the rest (the default);
    - `bop2`: `Bop2ndOrder` on binary kernels + Adam on the rest;
    - `adam`: Adam on everything, binary kernels as latent real weights
      (BinaryConnect style: give those kernels a `weight_clip` constraint).

    γ and τ are in raw gradient units for `bop` (they depend on batch size and a
    mean-reduced loss; defaults: batch 128, cross-entropy mean). For `bop2`, τ
    is a signal-to-noise ratio and γ/σ are moving-average rates; its default
    τ = 2e-2 sits above the cold-start ratio γ/√σ = 1e-2 (see `DEFAULTS`).
    """

    name: str = "bop"
    threshold: float | None = None
    gamma: float | None = None
    sigma: float = 1e-2
    learning_rate: float = BopAdamConfig.learning_rate
    lr_schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig("cosine"))
    gamma_schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    threshold_schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def validate(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(
                f"unknown optimizer {self.name!r}; choose one of {', '.join(OPTIMIZERS)}."
            )
        for value, what in ((self.learning_rate, "learning_rate"), (self.sigma, "sigma")):
            if not value > 0:
                raise ConfigError(f"{what} must be > 0 (got {value}).")
        for value, what in ((self.gamma, "gamma"), (self.threshold, "threshold")):
            if value is not None and value < 0:
                raise ConfigError(f"{what} must be ≥ 0 (got {value}).")
        for s in (self.lr_schedule, self.gamma_schedule, self.threshold_schedule):
            s.validate()

    def resolved(self) -> tuple[float, float]:
        """(threshold, gamma) with the per-optimizer defaults filled in."""
        defaults = DEFAULTS[self.name]
        threshold = defaults[0] if self.threshold is None else self.threshold
        gamma = defaults[1] if self.gamma is None else self.gamma
        return threshold, gamma

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> OptimizerConfig:
        """From `to_dict()`'s form; a schedule may also be a dict or just its kind ("cosine").

        Raises:
            ConfigError: a key that is not a field.
        """
        d = dict(d)
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(
                f"OptimizerConfig has no field {', '.join(map(repr, unknown))}. Fix: use "
                f"{', '.join(f.name for f in fields(cls))}."
            )
        for key in ("lr_schedule", "gamma_schedule", "threshold_schedule"):
            if isinstance(d.get(key), dict):
                d[key] = ScheduleConfig(**d[key])
            elif isinstance(d.get(key), str):
                d[key] = ScheduleConfig(d[key])
        return cls(**d)


# (threshold τ, gamma γ) per optimizer. bop: BopAdamConfig (bnn_small, batch 128).
# bop2: on its first step m = γg and v = σg², so m/√v = γ/√σ · sign(g) and every weight
# whose gradient agrees with it flips when τ < γ/√σ. The paper's τ = γ = 1e-6 (σ 1e-2) and
# τ 1e-6 with γ 1e-3 both do that (half the kernel flips at once); τ 2e-2 with γ 1e-3 does
# not, and trained bnn_small to 0.78 vs 0.66 / 0.57 (benchmarks/results/optimizers_recipes.json).
# adam ignores both.
DEFAULTS: dict[str, tuple[float, float]] = {
    "bop": (BopAdamConfig.threshold, BopAdamConfig.gamma),
    "bop2": (2e-2, 1e-3),
    "adam": (0.0, 0.0),
}


def make_optimizer(
    config: OptimizerConfig | None = None,
    *,
    steps_per_epoch: int | None = None,
    epochs: int | None = None,
) -> tf.keras.optimizers.legacy.Optimizer:
    """Build the optimizer described by `config` (default: Bop + Adam, cosine learning rate).

    Returns a `CaseOptimizer` (binary kernels → Bop/Bop2ndOrder, rest → Adam) or,
    for `name="adam"`, a plain legacy Adam.
    """
    config = config or OptimizerConfig()
    config.validate()
    span = {"steps_per_epoch": steps_per_epoch, "epochs": epochs}
    lr = make_schedule(config.learning_rate, config.lr_schedule, **span)
    if config.name == "adam":
        return tf.keras.optimizers.legacy.Adam(lr)
    threshold, gamma = config.resolved()
    tau = make_schedule(threshold, config.threshold_schedule, **span)
    gam = make_schedule(gamma, config.gamma_schedule, **span)
    if config.name == "bop":
        return bop_adam(threshold=tau, gamma=gam, learning_rate=lr)
    return lq.optimizers.CaseOptimizer(
        (Bop2ndOrder.is_binary_variable, Bop2ndOrder(threshold=tau, gamma=gam, sigma=config.sigma)),
        default_optimizer=tf.keras.optimizers.legacy.Adam(lr),
    )


def inner_optimizers(optimizer) -> dict[str, Any]:
    """Name → optimizer for a CaseOptimizer's parts (`"bop"`, `"bop2"`, `"adam"`, ...).

    A plain optimizer maps to itself under its lower-cased class name.
    """
    parts = list(getattr(optimizer, "optimizers", None) or [optimizer])
    named: dict[str, Any] = {}
    for opt in parts:
        key = {"Bop": "bop", "Bop2ndOrder": "bop2"}.get(
            type(opt).__name__, type(opt).__name__.lower()
        )
        named.setdefault(key, opt)
    return named


def hyperparameter(opt, name: str) -> float | None:
    """Current value of `name` (e.g. gamma, threshold, learning_rate), schedules evaluated."""
    try:
        value = opt._get_hyper(name)
    except (AttributeError, KeyError):
        return None
    if isinstance(value, tf.keras.optimizers.schedules.LearningRateSchedule):
        value = value(opt.iterations)
    try:
        return float(tf.keras.backend.get_value(value))
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------ sanity checks


class SetupWarning(UserWarning):
    """A training set-up that runs but probably does not do what was meant."""


def _var_key(var) -> Any:
    return getattr(var, "_unique_id", id(var))


def _claims(optimizer) -> list[tuple[str, Any]]:
    """(kind, predicate) for each predicate of a CaseOptimizer; kind is bop/bop2/other."""
    pairs = getattr(optimizer, "pred_opt_pairs", None) or ()
    return [(inner_key(opt), pred) for pred, opt in pairs]


def uses_bop(optimizer) -> bool:
    """Whether `optimizer` trains some variables with Bop or Bop2ndOrder (a CaseOptimizer)."""
    return any(kind in ("bop", "bop2") for kind, _ in _claims(optimizer))


def inner_key(opt) -> str:
    return {"Bop": "bop", "Bop2ndOrder": "bop2"}.get(type(opt).__name__, "other")


def check_setup(model: tf.keras.Model, optimizer=None, *, warn: bool = True) -> list[str]:
    """Find contradictory optimizer/model combinations; warn (`SetupWarning`) and return them.

    Checked:
    - a kernel trained by Bop/Bop2ndOrder that also has a kernel constraint
      (e.g. `weight_clip`): Bop keeps weights at ±1, so the clip does nothing
      at best and rescales binary weights at worst;
    - a Bop-trained kernel with a kernel regulariser (L2): its gradient 2λw
      points along w, so it pushes Bop's moving average towards *flipping*
      every weight instead of shrinking it;
    - a 1-bit kernel that a CaseOptimizer with Bop does not claim (it is then
      trained as a latent real weight by the default optimizer, or not at all).
    """
    optimizer = optimizer if optimizer is not None else getattr(model, "optimizer", None)
    claims = _claims(optimizer) if optimizer is not None else []
    if not uses_bop(optimizer):
        return []
    problems = []
    mapping = getattr(optimizer, "var_opt_mapping", None)
    for layer, kernel in introspect.binary_kernels(model):
        if mapping is not None:  # restored optimizer: predicates are placeholders
            index = mapping.get(_var_key(kernel))
            kind = claims[index][0] if index is not None and index < len(claims) else None
        else:
            kind = next((k for k, pred in claims if pred(kernel)), None)
        where = f"layer {layer.name!r}"
        if kind in ("bop", "bop2"):
            if getattr(layer, "kernel_constraint", None) is not None:
                problems.append(
                    f"{where}: its binary kernel is trained by Bop but has kernel_constraint="
                    f"{type(layer.kernel_constraint).__name__}; Bop keeps weights at ±1, so drop the "
                    "constraint (e.g. build the model with kernel_constraint=None)."
                )
            if getattr(layer, "kernel_regularizer", None) is not None:
                problems.append(
                    f"{where}: its binary kernel is trained by Bop but has a kernel_regularizer; "
                    "an L2 gradient 2λw makes Bop flip weights. Remove the regulariser."
                )
        elif kind is None:
            default = getattr(optimizer, "default", None)
            fate = (
                f"is trained as a latent real weight by {type(default).__name__}"
                if default is not None
                else "is not trained at all"
            )
            problems.append(
                f"{where}: its kernel is binarised but no Bop optimizer claims it, so it {fate}. "
                "Fix: give it a kernel_quantizer with precision 1 (e.g. 'ste_sign') or a predicate that claims it."
            )
    if warn:
        for p in problems:
            warnings.warn(p, SetupWarning, stacklevel=2)
    return problems
