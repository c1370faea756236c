"""One pydantic schema per config part (models', optimizers', Trainer's from their signatures), refusing in one line."""

import functools
import inspect
import logging
import re
import warnings
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from makemore.errors import ConfigError

POSITIVE_INT, POSITIVE, RATE = "a positive integer", "a positive number", "a number in [0, 1)"
PositiveInt = Annotated[int, Field(gt=0, description=POSITIVE_INT)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False, description=POSITIVE)]
Rate = Annotated[float, Field(ge=0, lt=1, description=RATE)]
RateOrNull = Annotated[Rate | None, Field(description=f"{RATE}, or null for dropout's")]
Warmup = Annotated[int, Field(ge=0, description="a whole number of steps >= 0")]
SPLIT = "three positive fractions (train, val, test) summing to 1"
CKPT = "a path (a run dir or a .ckpt file), or a list of them for an ensemble: '[RUN_A,RUN_B]'"
Ckpt = Annotated[str | list[str], Field(description=CKPT)]
TYPE_TEXT = {int: "an integer", float: "a number", bool: "true or false", str: "text", type(None): "null"}
KINDS = {"model": "a makemore model", "optimizer": "an optimizer here", "scheduler": "a schedule here"}
NAMES_CODE = "{} names code to run ({!r}); makemore builds its parts from its own registries by name, so a "
NAMES_CODE += "config or checkpoint may not name code"
INTERPOLATION = re.compile(r"\$\{([\w.]+)\}")  # `model.hidden: ${hidden}`: a refusal names `hidden`, as typed


class Schema(BaseModel):  # strict: 2.5 is not an integer, true is not a number, "3" is not a number
    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    what: ClassVar[str] = "this config"
    unknown: ClassVar[str] = "is not a setting of {what}; its settings are: {allowed}"


def check(schema: Any, values: Any, where: str = "", raw: Any = None) -> Schema:
    """`values` by `schema` (or by the registry entry values["name"] names), else a ConfigError naming the bad key."""
    if isinstance(schema, Mapping):
        if "_target_" in values:
            raise ConfigError(NAMES_CODE.format(f"{where}._target_", str(values["_target_"])[:80]))
        name = values.get("name")
        part = where.rpartition(".")[2]  # model, optimizer or scheduler
        if not isinstance(name, str) or name not in schema:
            raise ConfigError(f"{where}.name={name!r} is not {KINDS[part]}; choose one of: {', '.join(schema)}")
        schema = schema[name] if issubclass(schema[name], Schema) else signature_schema(schema[name], name, part)
    try:
        return schema.model_validate(dict(values))
    except ValidationError as e:
        raise ConfigError(_message(e.errors()[0], schema, values, where, raw)) from None


def _message(error: Mapping[str, Any], schema: Any, values: Any, where: str, raw: Any) -> str:
    """One line for pydantic's first error: the key as the user writes it, its value, its range."""
    keys, field, what = [], None, schema.what
    for part in error["loc"]:
        if part not in (schema.model_fields if schema else {}):
            break
        keys.append(str(part))
        field = schema.model_fields[part]
        values = values.get(part) if isinstance(values, Mapping) else None
        raw = raw.get(part) if isinstance(raw, Mapping) else None
        types = get_args(field.annotation) or (field.annotation,)  # X | None: (X, None); else the one type
        schema = next((t for t in types if isinstance(t, type) and issubclass(t, Schema)), None)
        what = schema.what if schema else what
    key = ".".join([where, *keys] if where else keys)
    extra = str(error["loc"][-1]) if error["type"] == "extra_forbidden" else None  # values: the mapping holding it
    if extra in (None, "_target_") and isinstance(values, Mapping) and "_target_" in values:
        return NAMES_CODE.format(f"{key}._target_" if key else "_target_", str(values["_target_"])[:80])
    if extra:
        allowed = ", ".join(f.alias or k for k, f in schema.model_fields.items())
        return f"{key + '.' if key else ''}{extra} " + schema.unknown.format(what=what, allowed=allowed)
    if error["type"] == "missing":
        return f"{key} is required in {what}"
    if field is None:
        return f"{key or where}: {error['msg']}"
    words = (TYPE_TEXT.get(t, str(getattr(t, "__name__", t))) for t in types)  # lazy: only without a description
    text = field.description or " or ".join(dict.fromkeys(words))  # else the types' words: "an integer or null"
    typed = INTERPOLATION.fullmatch(raw) if isinstance(raw, str) else None
    return f"{typed[1] if typed else key} must be {text}, got {values!r}"


def _first_unplain(value: Any, where: str) -> str | None:
    """The refusal of the first value at any depth that is not plain data (a tensor, an object); else None."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where}: key {key!r} is not a string; configs hold plain named values only"
            if found := _first_unplain(item, f"{where}.{key}"):
                return found
    elif isinstance(value, list | tuple):
        return next((found for i, v in enumerate(value) if (found := _first_unplain(v, f"{where}[{i}]"))), None)
    elif not isinstance(value, bool | int | float | str | type(None)):
        plain = "number, string, bool, null or a list of them"
        return f"{where} holds a {type(value).__name__}, not a plain value ({plain})"
    return None


SIGNATURE_RULES: dict[str, Any] = {  # the ranges a signature cannot say, as types
    **dict.fromkeys(("block_size", "emb_dim", "hidden", "n_layer", "n_head"), PositiveInt),
    **dict.fromkeys(("dropout", "emb_dropout", "weight_dropout"), Rate),
    **dict.fromkeys(("attn_dropout", "resid_dropout"), RateOrNull),
    "bn_momentum": Annotated[float, Field(gt=0, le=1, description="a number in (0, 1]")],
    "lr": PositiveFloat,  # the optimizers' (torch checks the rest at the door): torch takes lr=0, which never steps
    "betas": Annotated[list[float], Field(min_length=2, max_length=2, description="two numbers in [0, 1)")],
    "weight_decay": float,
    "dampening": Annotated[float, Field(ge=0, description="a number >= 0")],
    "ns_steps": PositiveInt,
    "val_check_interval": Annotated[  # Lightning's Trainer: the ranges its constructor (built at the door) leaves open
        Annotated[int, Field(ge=1)] | Annotated[float, Field(gt=0, le=1)] | None,
        Field(description="a whole number of optimizer steps >= 1 or a fraction of an epoch in (0, 1]"),
    ],
    "limit_val_batches": Annotated[
        Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0, le=1)] | None,
        Field(description="a number of validation batches or a fraction of the split in [0, 1]"),
    ],
    "check_val_every_n_epoch": Annotated[
        PositiveInt | None, Field(description="a whole number of epochs >= 1 or null")
    ],
    "log_every_n_steps": Annotated[int, Field(ge=0, description="a whole number of steps >= 0 (0: never log)")],
    "accumulate_grad_batches": Annotated[int, Field(ge=1, description="a whole number >= 1")],
    "gradient_clip_val": Annotated[
        PositiveFloat | None, Field(description=f"{POSITIVE} (the largest gradient norm) or null")
    ],
    "gradient_clip_algorithm": Annotated[Literal["norm", "value"] | None, Field(description="norm, value or null")],
}


@functools.cache  # once per class and process: every door check and checkpoint load reuses it
def signature_schema(cls: type, name: str | None = None, kind: str = "model") -> type[Schema]:
    """The keyword arguments of `cls` (annotation or SIGNATURE_RULES type, default); a registry entry's by `name:`."""
    fields: dict[str, Any] = {"name": (Literal[name], Field(description=repr(name)))} if name else {}
    for key, param in inspect.signature(cls.__init__).parameters.items():
        # the last four are torch.optim's internals, not a run's settings
        if key not in ("self", "vocab_size", "params", "maximize", "foreach", "capturable", "differentiable"):
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[key] = (SIGNATURE_RULES.get(key, param.annotation), default)
    schema = create_model(f"{cls.__name__}Config", __base__=Schema, **fields)
    schema.what = f"the {name} {kind}" if name else f"Lightning's {cls.__name__}"
    if not name:
        schema.unknown = f"is not an argument of Lightning's {cls.__name__} (see lightning.pytorch.{cls.__name__})"
    return schema


def check_model(values: Mapping[str, Any], where: str = "model") -> Schema:
    from makemore.models import MODELS

    return check(MODELS, values, where)


class ConstantSchedule(Schema):
    name: Literal["constant"]
    warmup_steps: Warmup = 0


class StepSchedule(Schema):
    name: Literal["step"]
    milestones: list[Annotated[int, Field(gt=0)]] | None = Field(
        None, description="a list of optimizer steps > 0, or null (one at decay_at of the run)"
    )
    decay_at: float = Field(0.5, gt=0, le=1, description="a fraction of the run in (0, 1]")
    gamma: PositiveFloat = 0.1
    warmup_steps: Warmup = 0


class CosineSchedule(Schema):
    name: Literal["cosine"]
    total_steps: PositiveInt | None = Field(None, description="a positive whole number of steps, or null (the run's)")
    min_lr: float = Field(0.0, ge=0, description="a number >= 0")
    warmup_steps: Warmup = 0


SCHEDULES: dict[str, type[Schema]] = {"constant": ConstantSchedule, "step": StepSchedule, "cosine": CosineSchedule}
for _name, _schema in SCHEDULES.items():
    _schema.what = f"the {_name} schedule"


class DataConfig(Schema):
    what: ClassVar[str] = "the data group"
    target: str = Field(alias="_target_")
    path: str | None = Field(None, description="a file path or null")
    default: dict[Literal["file", "url", "sha256"], str] = Field(description="{file, url, sha256}: text")
    block_size: PositiveInt
    batch_size: PositiveInt
    split: list[Annotated[float, Field(gt=0)]] = Field(min_length=3, max_length=3, description=SPLIT)
    split_seed: int
    eval_batch_size: PositiveInt
    sampler_seed: int
    overfit_items: PositiveInt | None = Field(None, description="a positive integer or null")


class SampleAtEnd(Schema):
    num_samples: PositiveInt
    max_len: PositiveInt


class LrFindOptions(Schema):
    min_lr: PositiveFloat
    max_lr: PositiveFloat
    num_training: int = Field(ge=10, description="at least 10 sweep steps")
    early_stop_threshold: Annotated[float, Field(gt=1)] | None = Field(description="a number > 1, or null")
    skip_begin: int = Field(description="a whole number from 0 to num_training - 3")
    apply: bool


class TrainConfig(Schema):  # conf/train.yaml's own keys (the knobs: where they land)
    seed: int
    name: str | int | None = Field(None, description="text or null")
    tags: list[str | int] = Field([], description="a list of labels")
    steps_per_call: PositiveInt
    ema: float | None = Field(None, gt=0, lt=1, description="a decay in (0, 1), e.g. 0.999, or null (off)")
    ckpt_every: PositiveInt
    ckpt_path: str | None = Field(None, description="a .ckpt file or null")
    resume: str | None = Field(None, description="a run dir or null")
    divergence_factor: float = Field(gt=1, allow_inf_nan=False, description="a number > 1 (x ln V)")
    matmul_precision: Literal["highest", "high", "medium"] = Field(description="highest, high or medium")
    threads: PositiveInt | None = Field(description=POSITIVE_INT)
    one_thread_below: float = Field(ge=0, allow_inf_nan=False, description="a number >= 0")
    outputs_dir: str = Field(description="a directory")
    print_config: bool = True
    lr_find: LrFindOptions
    sample: SampleAtEnd
    data: DataConfig
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None = None


class SampleOptions(Schema):
    ckpt: Ckpt
    threads: PositiveInt | None = Field(None, description="a positive integer or null")
    n: PositiveInt
    seed: int
    temperature: float = Field(ge=0, allow_inf_nan=False, description="a number > 0, or 0 for greedy decoding")
    top_k: PositiveInt | None = Field(description=POSITIVE_INT)
    prefix: str | int = Field(description="text")
    max_len: PositiveInt
    mark_new: bool


class EvalPaths(Schema):
    path: str | None = Field(None, description="a file path or null")


class EvalOptions(Schema):
    ckpt: Ckpt
    threads: PositiveInt | None = Field(None, description="a positive integer or null")
    data: EvalPaths
    out: str | None = Field(None, description="a file path or null")
    eval_batch_size: PositiveInt


class DataRecord(Schema):
    what: ClassVar[str] = "the data record"
    path: str
    sha256: str
    split: list[float]
    split_seed: int
    overfit_items: int | None = None


class StoredConfig(Schema):  # the LitLanguageModel's arguments as a checkpoint stores them
    what: ClassVar[str] = "a makemore checkpoint"
    model: dict[str, Any]
    vocab: list[Annotated[str, Field(min_length=1, max_length=1)]] = Field(description="a list of single characters")
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None = None
    data: DataRecord | None = None
    divergence_factor: float = 20.0


def check_stored_config(hparams: Mapping[str, Any]) -> None:
    """The stored config rebuilds only what the registries know, from plain values, at any depth."""
    from makemore.optim import OPTIMIZERS

    if unplain := _first_unplain(hparams, "config"):
        raise ConfigError(unplain)
    check(StoredConfig, hparams, "config")
    check_model(hparams["model"], "config.model")
    check(OPTIMIZERS, hparams["optimizer"], "config.optimizer")
    if hparams.get("scheduler") is not None:
        check(SCHEDULES, hparams["scheduler"], "config.scheduler")


REFUSED = {  # Trainer arguments makemore sets or cannot honour: what to use instead (KEPT's value or null passes)
    "logger": "choose loggers with logger=tensorboard|csv|mlflow|wandb|many, or logger=null for none",
    "callbacks": "add one with +callbacks.NAME._target_=lightning.pytorch.callbacks.CLASS (+callbacks.NAME.ARG=...)",
    "plugins": "makemore's checkpoint writer is its only plugin; precision is trainer.precision",
    "use_distributed_sampler": "keep it false: the data module shares val/test out to the processes itself",
    "reload_dataloaders_every_n_epochs": "keep it 0: every step draws a fresh random minibatch already",
    "limit_test_batches": "makemore scores the whole test split after training (metrics.json test_loss); "
    "scripts/eval.py scores any split of a checkpoint",
    "limit_predict_batches": "makemore does not predict; use scripts/sample.py",
    "barebones": "makemore's results need its checkpoints and loss logs; for a bare run pass logger=null "
    "trainer.enable_progress_bar=false trainer.enable_checkpointing=false",
    "model_registry": "this machine has no network; checkpoints are in <run dir>/checkpoints",
}
KEPT = {"use_distributed_sampler": False, "reload_dataloaders_every_n_epochs": 0, "barebones": False}


def check_parts(values: dict[str, Any], raw: dict[str, Any]) -> None:
    """The trainer, model and optimizer: by makemore's refusals and schemas, then by their own constructors."""
    import lightning.pytorch as pl
    import torch
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from makemore.models import MODELS, build_model
    from makemore.optim import OPTIMIZERS, build_optimizer

    trainer, model, optimizer = dict(values["trainer"]), values["model"], values["optimizer"]
    if isinstance(trainer.get("profiler"), dict):  # a _target_: the run's Trainer builds it
        trainer.pop("profiler")
    for key, instead in REFUSED.items():
        if trainer.get(key, KEPT.get(key)) != KEPT.get(key):
            raise ConfigError(f"trainer.{key}={trainer[key]!r} is not used here: {instead}")
    if str(trainer.get("precision") or "32-true") not in ("32-true", "32", "bf16-mixed"):
        raise ConfigError(
            f"trainer.precision={trainer['precision']} is not supported: use 32-true or bf16-mixed (float16 needs "
            "loss scaling, which the multi-step path does not do)"
        )
    check(signature_schema(pl.Trainer), trainer, "trainer", raw["trainer"])
    check(MODELS, model, "model", raw["model"])
    check(OPTIMIZERS, optimizer, "optimizer", raw["optimizer"])
    try:
        with torch.random.fork_rng(devices=[]):
            build_optimizer(optimizer, build_model(model, vocab_size=2))
    except (ValueError, RuntimeError) as e:
        raise ConfigError(f"optimizer={optimizer['name']}: torch.optim refuses its settings: {e}") from None
    kwargs = {k: v for k, v in trainer.items() if k not in ("deterministic", "benchmark")}  # process-wide: the run's
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)  # its notes (GPU available ...) are the run's to say
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pl.Trainer(**{**kwargs, "logger": False})
    except (MisconfigurationException, ValueError, TypeError, ImportError) as e:
        raise ConfigError(f"Lightning refused the trainer settings: {' '.join(str(e).split())}") from None
    finally:
        logging.disable(disabled)
