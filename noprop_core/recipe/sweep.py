"""A sweep file: which recipe to tune, over which keys, how, and for how many trials.

    # noprop sweep sweeps/digits_dt.toml
    recipe = "digits_dt"                     # a file or a shipped recipe's name
    set = ["train.epochs=10", "data.validation=287"]   # fixed overrides of every trial
    method = "tpe"                           # "grid", "random" or "tpe"
    trials = 12
    seeds = [0]                              # each trial trains these seeds; the objective is their mean
    objective = "validation_accuracy"        # a metrics.json key, maximised; never the test set
    pruner = "median"                        # "none", "median" or "successive_halving"

    [launcher]                               # optional: workers on this machine or a Slurm cluster
    name = "local"
    workers = 2

    [space]
    "train.lr" = { type = "log_float", low = 1e-4, high = 1e-2 }
    "variant.eta" = { type = "float", low = 0.01, high = 1.0 }
    "model.backbone.dropout" = { type = "categorical", choices = [0.0, 0.1, 0.2] }

Checked as strictly as a recipe: unknown keys, wrong types and bad ranges are one-line errors.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs

from noprop_core.errors import RecipeError
from noprop_core.plugin.config import InvalidValue, at_least, one_of
from noprop_core.recipe.conversion import describe_errors, dotted, make_converter, one_line
from noprop_core.recipe.loading import read_toml

PARAMETER_TYPES = ("categorical", "int", "float", "log_float")
METHODS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "successive_halving")
# Metrics a sweep may maximise: what the training data and a held-out split say. The test set
# only measures the chosen configuration, once, at the end.
OBJECTIVES = ("validation_accuracy", "train_accuracy")


@attrs.frozen(kw_only=True)
class Parameter:
    type: str = attrs.field(validator=one_of(*PARAMETER_TYPES))
    low: float | None = None
    high: float | None = None
    step: float | None = None  # int and float: the grid's spacing (needed by method = "grid" for floats)
    choices: list[Any] | None = None

    def some_value(self) -> Any:
        """A value from the range (its first choice, or its low end): to try a key with."""
        if self.type == "categorical":
            assert self.choices  # checked by ``problem``
            return self.choices[0]
        assert self.low is not None  # checked by ``problem``
        return int(self.low) if self.type == "int" else self.low

    def problem(self) -> str | None:
        """What is wrong with this range, or None."""
        if self.type == "categorical":
            if not self.choices:
                return "a categorical parameter needs choices = [...], at least one"
            if self.low is not None or self.high is not None:
                return "a categorical parameter takes choices, not low and high"
            return None
        if self.choices is not None:
            return f"a {self.type} parameter takes low and high, not choices"
        if self.low is None or self.high is None:
            return f"a {self.type} parameter needs low and high"
        if not self.low < self.high:
            return f"low ({self.low}) must be below high ({self.high})"
        if self.type == "log_float" and self.low <= 0:
            return f"a log_float range must be positive, got low = {self.low}"
        if self.type == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            return "an int parameter needs whole-number low and high"
        if self.step is not None and not 0 < self.step <= self.high - self.low:
            return f"step ({self.step}) must be positive and at most high − low"
        return None

    def grid_values(self) -> list[Any] | None:
        """Every value a grid visits, or None when the range has no finite grid."""
        if self.type == "categorical":
            return list(self.choices or [])
        low, high = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.type == "int":
            step = int(self.step or 1)
            return list(range(int(low), int(high) + 1, step))
        if self.step is None or self.type == "log_float":
            return None
        count = int(math.floor((high - low) / self.step + 1e-9)) + 1
        return [low + index * self.step for index in range(count)]


@attrs.frozen(kw_only=True)
class Sweep:
    recipe: str
    space: dict[str, Parameter]
    set: list[str] = attrs.field(factory=list)
    method: str = attrs.field(default="tpe", validator=one_of(*METHODS))
    trials: int = attrs.field(default=12, validator=at_least(1))
    seeds: list[int] = attrs.field(factory=lambda: [0])
    objective: str = "validation_accuracy"
    pruner: str = attrs.field(default="none", validator=one_of(*PRUNERS))
    storage: str | None = None  # an SQLAlchemy URL (sqlite:///…, postgresql://…) or journal:PATH; default OUT/study.db
    sampler_seed: int = attrs.field(default=0, validator=at_least(0))
    # where the trials run: a [launcher] table (docs/cluster.md); none: in the `noprop sweep` process
    launcher: dict[str, Any] | None = None


def _problems(sweep: Sweep, origin: str) -> list[str]:
    problems = []
    if not sweep.space:
        problems.append(
            f"{origin}: space: empty; name at least one recipe key to search, e.g. "
            '"train.lr" = { type = "log_float", low = 1e-4, high = 1e-2 }'
        )
    for key, parameter in sweep.space.items():
        problem = parameter.problem()
        if problem:
            problems.append(f"{origin}: {dotted(('space', key))}: {problem}")
        elif sweep.method == "grid" and parameter.grid_values() is None:
            problems.append(
                f"{origin}: {dotted(('space', key))}: method = 'grid' needs a finite grid: choices, an int "
                "range, or a float range with step"
            )
    if sweep.objective == "test_accuracy":
        problems.append(
            f"{origin}: objective: choosing hyper-parameters on the test set makes its accuracy "
            "an optimistic estimate; use validation_accuracy (data.validation holds a split out)"
        )
    elif sweep.objective not in OBJECTIVES:
        problems.append(f"{origin}: objective: expected one of {', '.join(OBJECTIVES)}, got {sweep.objective!r}")
    if not sweep.seeds or len(set(sweep.seeds)) != len(sweep.seeds) or min(sweep.seeds) < 0:
        problems.append(f"{origin}: seeds: expected different whole numbers >= 0, at least one, got {sweep.seeds}")
    return problems


def load_sweep(path: Path) -> Sweep:
    raw = read_toml(path)
    converter = make_converter()
    converter.register_structure_hook(float | None, _optional_number)
    try:
        sweep = converter.structure(raw, Sweep)
    except Exception as exc:  # noqa: BLE001 - every structuring failure becomes error lines
        raise RecipeError(
            [f"{path}: {key or '(top level)'}: {one_line(msg)}" for key, msg in describe_errors(exc)]
        ) from None
    problems = _problems(sweep, str(path))
    if problems:
        raise RecipeError(problems)
    return sweep


def _optional_number(value: Any, _type: type) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidValue("", f"expected a finite number, got {value!r}")
    return value
