"""What a config may hold: one pydantic schema per part, with each key's allowed range.

Checked once, before anything is written: train.py's and lr_find.py's config before the run dir exists
(makemore.config.CheckConfigFirst), sample.py's and eval.py's options before a checkpoint is read, and the
config stored in every checkpoint before the model is rebuilt from it. A checkpoint is data, never code: its
config may hold only the names of this project's registries and plain values, no `_target_`, no objects.

A refusal is one line naming the key, the value and the allowed range (each field's description):
`batch_size must be a positive integer, got 0`.
"""

import functools
import inspect
import math
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from makemore.errors import ConfigError

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
POSITIVE_INT = "a positive integer"
PLAIN_SCALARS = (bool, int, float, str, type(None))


class Schema(BaseModel):
    """Strict: 2.5 is not an integer, true is not a number, "3" is not a number; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)
    what: ClassVar[str] = "this config"  # "is not a setting of <what>"


def rule(default: Any = ..., text: str = POSITIVE_INT, **constraints: Any) -> Any:
    """A field whose refusal reads "<key> must be <text>, got <value>"."""
    return Field(default, description=text, **constraints)


def check(schema: type[Schema], values: Mapping[str, Any], where: str = "") -> Schema:
    """`values` validated by `schema`, or a ConfigError naming the first offending key under `where`."""
    unplain = _first_unplain(values, where)
    if unplain:
        raise ConfigError(unplain)
    try:
        return schema.model_validate(dict(values))
    except ValidationError as e:
        raise ConfigError(_message(e.errors()[0], schema, values, where)) from None


def _message(error: Mapping[str, Any], schema: type[Schema], values: Any, where: str) -> str:
    """One line for pydantic's first error: the key as the user writes it, its value, its range."""
    keys, field, what = [], None, schema.what
    for part in error["loc"]:
        fields = schema.model_fields if schema else {}
        if part not in fields:
            break
        keys.append(str(part))
        field = fields[part]
        values = values.get(part) if isinstance(values, Mapping) else None
        nested = [t for t in (get_args(field.annotation) or [field.annotation]) if t is not type(None)]
        schema = nested[0] if isinstance(nested[0], type) and issubclass(nested[0], Schema) else None
        what = schema.what if schema else what
    key = ".".join([where, *keys] if where else keys)
    if error["type"] == "extra_forbidden":
        extra = str(error["loc"][-1])
        if extra == "_target_":
            return _names_code(f"{key}._target_" if key else "_target_", error["input"])
        allowed = ", ".join(f.alias or k for k, f in schema.model_fields.items()) if schema else ""
        return f"{key + '.' if key else ''}{extra} is not a setting of {what}; its settings are: {allowed}"
    if isinstance(values, Mapping) and "_target_" in values:
        return _names_code(f"{key}._target_", values["_target_"])
    if error["type"] == "missing":
        return f"{key} is required in {what}"
    return f"{key} must be {field.description if field and field.description else error['msg']}, got {values!r}"


def _names_code(key: str, target: Any) -> str:
    return (
        f"{key} names code to run ({str(target)[:80]!r}); makemore builds its parts from its own registries by name, "
        "so a config or checkpoint may not name code"
    )


def _first_unplain(value: Any, where: str) -> str | None:
    """The refusal of the first value that is not plain data (a tensor, an object), at any depth; else None."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: key {key!r} is not a string; configs hold plain named values only"
            if found := _first_unplain(item, f"{where}.{key}" if where else key):
                return found
    elif isinstance(value, list | tuple):
        return next((found for i, v in enumerate(value) if (found := _first_unplain(v, f"{where}[{i}]"))), None)
    elif not isinstance(value, PLAIN_SCALARS):
        plain = "number, string, bool, null or a list of them"
        return f"{where} holds a {type(value).__name__}, not a plain value ({plain})"
    return None


# --- the model: one schema per registry entry, read from its constructor's signature -----------------------

MODEL_KNOB_RULES: dict[str, tuple[Any, str]] = {  # knob -> (type, the refusal's range)
    "block_size": (PositiveInt, POSITIVE_INT),
    "emb_dim": (PositiveInt, POSITIVE_INT),
    "hidden": (PositiveInt, POSITIVE_INT),
    "n_layer": (PositiveInt, POSITIVE_INT),
    "n_head": (PositiveInt, POSITIVE_INT),
    "dropout": (Annotated[float, Field(ge=0, lt=1)], "a number in [0, 1)"),
    "emb_dropout": (Annotated[float, Field(ge=0, lt=1)], "a number in [0, 1)"),
    "weight_dropout": (Annotated[float, Field(ge=0, lt=1)], "a number in [0, 1)"),
    "attn_dropout": (Annotated[float, Field(ge=0, lt=1)] | None, "a number in [0, 1), or null for dropout's"),
    "resid_dropout": (Annotated[float, Field(ge=0, lt=1)] | None, "a number in [0, 1), or null for dropout's"),
    "bn_momentum": (Annotated[float, Field(gt=0, le=1)], "a number in (0, 1]"),
}


def _model_schema(name: str, cls: type) -> type[Schema]:
    fields: dict[str, Any] = {"name": (Literal[name], rule(text=f"'{name}'"))}
    for knob, param in inspect.signature(cls.__init__).parameters.items():
        if knob in ("self", "vocab_size"):
            continue
        kind, text = MODEL_KNOB_RULES.get(knob, (param.annotation, _TYPE_TEXT.get(param.annotation, "")))
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[knob] = (kind, rule(default, text or f"a {param.annotation}"))
    schema = create_model(f"{cls.__name__}Config", __base__=Schema, **fields)
    schema.what = f"the {name} model"
    return schema


_TYPE_TEXT = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


@functools.cache  # built once per process: every check of a model config and every checkpoint load uses them
def model_schemas() -> dict[str, type[Schema]]:
    from makemore.models import MODELS

    return {name: _model_schema(name, cls) for name, cls in MODELS.items()}


def _choose(schemas: Mapping[str, type[Schema]], values: Any, where: str, kind: str) -> type[Schema]:
    """The schema `values["name"]` names, after refusing code and unknown names."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings, got {values!r}")
    if "_target_" in values:
        raise ConfigError(_names_code(f"{where}._target_", values["_target_"]))
    name = values.get("name")
    if not isinstance(name, str) or name not in schemas:
        raise ConfigError(f"{where}.name={name!r} is not {kind}; choose one of: {', '.join(schemas)}")
    return schemas[name]


def check_model(values: Mapping[str, Any], where: str = "model") -> Schema:
    return check(_choose(model_schemas(), values, where, "a makemore model"), values, where)


# --- optimizers and schedules -----------------------------------------------------------------------------


class SGDConfig(Schema):
    what: ClassVar[str] = "sgd"
    name: Literal["sgd"]
    lr: PositiveFloat = rule(text="a positive number")
    momentum: float = rule(0.0, "a number >= 0", ge=0)
    dampening: float = rule(0.0, "a number >= 0", ge=0)
    weight_decay: float = rule(0.0, "a number >= 0", ge=0)
    nesterov: bool = rule(False, "true or false")


class AdamWConfig(Schema):
    what: ClassVar[str] = "adamw"
    name: Literal["adamw"]
    lr: PositiveFloat = rule(text="a positive number")
    betas: list[Annotated[float, Field(ge=0, lt=1)]] = rule([0.9, 0.999], "two numbers in [0, 1)", min_length=2)
    eps: PositiveFloat = rule(1e-8, "a positive number")
    weight_decay: float = rule(0.0, "a number >= 0", ge=0)
    amsgrad: bool = rule(False, "true or false")
    fused: bool | None = rule(None, "true, false or null")

    @model_validator(mode="after")
    def _two_betas(self) -> "AdamWConfig":
        if len(self.betas) != 2:
            raise ConfigError(f"optimizer.betas must be two numbers in [0, 1), got {self.betas}")
        return self


class MuonConfig(AdamWConfig):
    what: ClassVar[str] = "muon"
    name: Literal["muon"]
    momentum: float = rule(0.95, "a number in [0, 1)", ge=0, lt=1)
    nesterov: bool = rule(True, "true or false")
    ns_steps: PositiveInt = rule(5, POSITIVE_INT)


OPTIMIZER_SCHEMAS: dict[str, type[Schema]] = {"sgd": SGDConfig, "adamw": AdamWConfig, "muon": MuonConfig}
WARMUP = "a whole number of steps >= 0"


class ConstantSchedule(Schema):
    what: ClassVar[str] = "the constant schedule"
    name: Literal["constant"]
    warmup_steps: int = rule(0, WARMUP, ge=0)


class StepSchedule(Schema):
    what: ClassVar[str] = "the step schedule"
    name: Literal["step"]
    milestones: list[Annotated[int, Field(gt=0)]] = rule(text="a list of optimizer steps > 0")
    gamma: PositiveFloat = rule(0.1, "a positive number")
    warmup_steps: int = rule(0, WARMUP, ge=0)

    @model_validator(mode="after")
    def _after_warmup(self) -> "StepSchedule":
        if any(m <= self.warmup_steps for m in self.milestones):
            raise ConfigError(
                f"scheduler.milestones={self.milestones} must come after warmup_steps={self.warmup_steps}"
            )
        return self


class CosineSchedule(Schema):
    what: ClassVar[str] = "the cosine schedule"
    name: Literal["cosine"]
    total_steps: PositiveInt = rule(text="a positive whole number of steps")
    min_lr: float = rule(0.0, "a number >= 0", ge=0)
    warmup_steps: int = rule(0, WARMUP, ge=0)

    @model_validator(mode="after")
    def _warmup_first(self) -> "CosineSchedule":
        if not self.warmup_steps < self.total_steps:
            raise ConfigError(
                f"scheduler.warmup_steps={self.warmup_steps} must be below total_steps={self.total_steps}"
            )
        return self


SCHEDULE_SCHEMAS: dict[str, type[Schema]] = {
    "constant": ConstantSchedule,
    "step": StepSchedule,
    "cosine": CosineSchedule,
}


def check_optimizer(values: Mapping[str, Any], where: str = "optimizer") -> Schema:
    return check(_choose(OPTIMIZER_SCHEMAS, values, where, "an optimizer here"), values, where)


def check_scheduler(values: Mapping[str, Any] | None, where: str = "scheduler") -> Schema | None:
    if values is None:
        return None
    return check(_choose(SCHEDULE_SCHEMAS, values, where, "a schedule here"), values, where)


# --- scripts/train.py and scripts/lr_find.py --------------------------------------------------------------

SPLIT = "three positive fractions (train, val, test) summing to 1"


class DefaultData(Schema):
    file: str
    url: str
    sha256: str


class DataConfig(Schema):
    what: ClassVar[str] = "the data group"
    target: str = Field(alias="_target_")
    path: str | None = rule(None, "a file path or null")
    default: DefaultData
    block_size: PositiveInt = rule()
    batch_size: PositiveInt = rule()
    split: list[float] = rule(text=SPLIT)
    split_seed: int = rule(text="an integer")
    eval_batch_size: PositiveInt = rule()
    sampler_seed: int = rule(text="an integer")
    overfit_items: PositiveInt | None = rule(None, "a positive integer or null")

    @model_validator(mode="after")
    def _fractions(self) -> "DataConfig":
        split = self.split
        if len(split) != 3 or any(f <= 0 for f in split) or not math.isclose(sum(split), 1.0):
            raise ConfigError(f"data.split must be {SPLIT}, got {split}")
        return self


class SampleAtEnd(Schema):
    what: ClassVar[str] = "sample"
    num_samples: PositiveInt = rule()
    max_len: PositiveInt = rule()


class LrFindOptions(Schema):
    what: ClassVar[str] = "lr_find"
    min_lr: PositiveFloat = rule(text="a positive number")
    max_lr: PositiveFloat = rule(text="a positive number")
    num_training: PositiveInt = rule()
    early_stop_threshold: Annotated[float, Field(gt=1)] | None = rule(text="a number > 1, or null")
    skip_begin: int = rule(text="a whole number from 0 to num_training - 3")
    apply: bool = rule(text="true or false")

    @model_validator(mode="wrap")
    @classmethod
    def _sweep(cls, values: Any, handler: Any) -> "LrFindOptions":
        checked = handler(values)  # each field in its range first; the messages quote the values as given
        low, high, n, skip = (values[key] for key in ("min_lr", "max_lr", "num_training", "skip_begin"))
        if not low < high:
            raise ConfigError(f"lr_find.min_lr={low} must be below lr_find.max_lr={high}")
        if n < 10:
            raise ConfigError(f"lr_find.num_training must be at least 10 sweep steps, got {n}")
        if not 0 <= skip <= n - 3:
            raise ConfigError(
                f"lr_find.skip_begin must be a whole number from 0 to num_training - 3 = {n - 3} (the suggestion "
                f"needs points after it), got {skip!r}"
            )
        return checked


class TrainConfig(Schema):
    """conf/train.yaml's keys but the run dir, trainer, loggers, callbacks and hydra (those are Lightning's and
    Hydra's: makemore.training.plan checks the trainer's)."""

    block_size: PositiveInt = rule()
    emb_dim: PositiveInt = rule()
    hidden: PositiveInt = rule()
    batch_size: PositiveInt = rule()
    seed: int = rule(text="an integer")
    name: str | int | None = rule(None, "text or null")
    tags: list[str | int] = rule([], "a list of labels")
    decay_at: float = rule(text="a fraction of the run in (0, 1]", gt=0, le=1)
    val_every: PositiveInt = rule()
    log_every: int = rule(text="a whole number of steps >= 0 (0: never log)", ge=0)
    steps_per_call: PositiveInt = rule()
    grad_clip: PositiveFloat | None = rule(text="a positive number (the largest gradient norm) or null")
    ema: float | None = rule(None, "a decay in (0, 1), e.g. 0.999, or null (off)", gt=0, lt=1)
    ckpt_every: PositiveInt = rule()
    ckpt_path: str | None = rule(None, "a .ckpt file or null")
    resume: str | None = rule(None, "a run dir or null")
    divergence_factor: float = rule(text="a number > 1 (x ln V)", gt=1, allow_inf_nan=False)
    matmul_precision: Literal["highest", "high", "medium"] = rule(text="highest, high or medium")
    threads: PositiveInt | None = rule()
    one_thread_below: float = rule(text="a number >= 0", ge=0, allow_inf_nan=False)
    outputs_dir: str = rule(text="a directory")
    print_config: bool = rule(True, "true or false")
    lr_find: LrFindOptions
    sample: SampleAtEnd
    data: DataConfig
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None = None


# --- scripts/sample.py and scripts/eval.py ----------------------------------------------------------------

CKPT_REQUIRED = "ckpt is required: pass ckpt=<run dir> or ckpt=<file.ckpt>"


class ToolOptions(Schema):
    ckpt: str | list[str] | None = rule(
        text="a path (a run dir or a .ckpt file), or a list of them for an ensemble: '[RUN_A,RUN_B]'"
    )

    @model_validator(mode="before")
    @classmethod
    def _ckpt_given(cls, values: Any) -> Any:
        if isinstance(values, Mapping) and values.get("ckpt") in (None, "", "???", []):
            raise ConfigError(CKPT_REQUIRED)
        return values


class SampleOptions(ToolOptions):
    n: PositiveInt = rule()
    seed: int = rule(text="an integer")
    temperature: float = rule(text="a number > 0, or 0 for greedy decoding", ge=0, allow_inf_nan=False)
    top_k: PositiveInt | None = rule()
    prefix: str | int = rule(text="text")
    max_len: PositiveInt = rule()
    mark_new: bool = rule(text="true or false")


class EvalPaths(Schema):
    path: str | None = rule(None, "a file path or null")


class EvalOptions(ToolOptions):
    data: EvalPaths
    out: str | None = rule(None, "a file path or null")
    eval_batch_size: PositiveInt = rule()


# --- a checkpoint's stored config (makemore.training.checkpoint) ------------------------------------------


class DataRecord(Schema):
    what: ClassVar[str] = "the data record"
    path: str
    sha256: str
    split: list[float]
    split_seed: int
    overfit_items: int | None = None


class StoredConfig(Schema):
    """The LitLanguageModel's arguments as a checkpoint stores them."""

    what: ClassVar[str] = "a makemore checkpoint"
    model: dict[str, Any]
    vocab: list[Annotated[str, Field(min_length=1, max_length=1)]] = rule(text="a list of single characters")
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None = None
    data: DataRecord | None = None
    divergence_factor: float = 20.0


def check_stored_config(hparams: Mapping[str, Any]) -> None:
    """The stored config rebuilds only what the registries know, from plain values, at any depth."""
    check(StoredConfig, hparams, "config")
    check_model(hparams["model"], "config.model")
    check_optimizer(hparams["optimizer"], "config.optimizer")
    check_scheduler(hparams.get("scheduler"), "config.scheduler")
