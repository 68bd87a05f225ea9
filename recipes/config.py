"""Typed recipe configuration: one dataclass per recipe gives the defaults, the CLI flags and the file format.

Every field becomes a flag (``batch_size`` -> ``--batch-size``); ``--config file.yaml|json`` supplies values
first and flags override them. Unknown keys and wrong types are refused before any training starts.

Example:

    @dataclasses.dataclass
    class Config(RecipeConfig):
        epochs: int = field(10, "training epochs per stage")

    cfg = parse_config(Config, ["--epochs", "3"])
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import typing
from pathlib import Path


def field(default, help: str, **kwargs):  # noqa: A002 - mirrors argparse's name
    """A dataclass field with a help string (lists need a factory: pass a list and it is copied)."""
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda d=default: list(d), metadata={"help": help, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


@dataclasses.dataclass
class RecipeConfig:
    """Fields every recipe has."""

    # Recipes whose data pass through [0, 1]-only transforms (domain shifts, corruptions, noise) set this False.
    INPUT_SCALE_255 = True

    dataset: str = field("digits", "dataset: a name (digits needs no download; mnist, fashion_mnist, cifar10_subset, "
                                   "...), an image folder (class sub-folders), tfds:NAME, or a .npz file")
    data_dir: typing.Optional[str] = field(None, "folder with <dataset>.npz or IDX files (default: $TFKD_DATA_DIR)")
    image_size: typing.Optional[typing.List[int]] = field(None, "image folder / tfds: resize every image to H,W "
                                                                "(default: the folder's own size)")
    color_mode: typing.Optional[str] = field(None, "image folder: grayscale, rgb or rgba (default: the first image's)")
    seed: int = field(0, "base random seed; seed i of --seeds uses seed + i")
    seeds: int = field(1, "repeat the compared arms with this many seeds and report mean +- std")
    batch_size: int = field(64, "batch size")
    lr: float = field(1e-3, "Adam learning rate")
    n_train: typing.Optional[int] = field(None, "use only this many training examples (stratified), for quick runs")
    n_test: typing.Optional[int] = field(None, "use only this many test examples")
    export: bool = field(True, "export the final student to TFLite and validate it")
    quantize: str = field("int8", "TFLite quantization of the exported student, besides float32: none, dynamic, "
                                  "float16 or int8")
    input_scale: str = field("unit", "pixel range every model is fed: unit ([0, 1], as tfkd's datasets load) or "
                                     "255 ([0, 255]: e.g. a --teacher .keras with Rescaling(1/255) inside)")
    allow_weak_teacher: bool = field(False, "run even if the check of a --teacher .keras file finds it at chance on "
                                            "validation, or clearly better at the other input scale")
    strategy: str = field("none", "tf.distribute strategy: none (one device), mirrored (every GPU of this host) or "
                                  "multiworker (the hosts in TF_CONFIG); --batch-size is then the global batch")

    def refuse_search_under_strategy(self, what: str):
        """keras-tuner clears the Keras session before every trial, which inside a tf.distribute scope drops the
        scope and fails when the recipe leaves it, after the whole search: refuse the combination before any work."""
        if self.strategy != "none":
            raise ValueError(f"{what} is a keras-tuner search, which does not run under --strategy "
                             f"{self.strategy} yet (keras-tuner clears the session between trials, dropping the "
                             "strategy's scope); run it with --strategy none.")

    def validate(self):
        """Raise ValueError on values that are well-typed but meaningless; recipes extend this."""
        _positive(self, "seeds", "batch_size")
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr} must be > 0.")
        from tfkd.distribute import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r} is not supported; expected one of {', '.join(STRATEGIES)}.")
        if self.input_scale not in ("unit", "255"):
            raise ValueError(f"input_scale={self.input_scale!r}; expected unit ([0, 1]) or 255 ([0, 255]).")
        if self.input_scale == "255" and not self.INPUT_SCALE_255:
            raise ValueError("input_scale=255 is not supported by this recipe: its domain transforms, corruptions "
                             "and noise work on [0, 1] images. Use --input-scale unit.")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ValueError(f"image_size={self.image_size}; expected two positive integers H,W, e.g. 32,32.")
        if self.color_mode not in (None, "grayscale", "rgb", "rgba"):
            raise ValueError(f"color_mode={self.color_mode!r}; expected grayscale, rgb or rgba.")
        if self.quantize not in ("none", "dynamic", "float16", "int8"):
            raise ValueError(f"quantize={self.quantize!r}; expected none, dynamic, float16 or int8.")
        for name in ("n_train", "n_test"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name}={value} must be a positive number of examples, or omitted for all.")
        _check_shared_knobs(self)


# Knobs that many recipes declare (each with its own default and help), checked here once, for whichever declares
# them: every ``*epochs`` field, and the fields of this table.
_SHARED_RANGES = {
    "temperature": ("> 0", lambda v: v > 0),
    "alpha": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "val_fraction": ("in (0, 0.5)", lambda v: 0 < v < 0.5),
}
_EPOCHS_MAY_BE_ZERO = ("finetune_epochs",)  # 0 skips that phase


def _check_shared_knobs(cfg):
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name.endswith("epochs") and isinstance(value, int):
            low = 0 if f.name in _EPOCHS_MAY_BE_ZERO else 1
            if value < low:
                raise ValueError(f"{f.name}={value} must be {'>= 0' if low == 0 else '> 0'} (a number of epochs).")
        elif f.name in _SHARED_RANGES:
            expected, ok = _SHARED_RANGES[f.name]
            if not ok(value):
                raise ValueError(f"{f.name}={value} must be {expected}.")


def _positive(cfg, *names):
    for name in names:
        value = getattr(cfg, name)
        if value <= 0:
            raise ValueError(f"{name}={value} must be > 0.")


def _base_type(tp):
    """(base type, is_list, optional) for the annotations used in configs."""
    origin = typing.get_origin(tp)
    optional = False
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional, tp = True, args[0]
        origin = typing.get_origin(tp)
    if origin is list:
        return typing.get_args(tp)[0], True, optional
    return tp, False, optional


def _hints(cls):
    return typing.get_type_hints(cls)


def _coerce(cls, name, value):
    """Check and convert one value from a config file or flag to the field's type."""
    tp, is_list, optional = _base_type(_hints(cls)[name])
    if value is None:
        if optional:
            return None
        raise ValueError(f"config key {name!r} cannot be null; expected {_type_name(cls, name)}.")
    if is_list:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"config key {name!r}={value!r} has type {type(value).__name__}; expected a list of "
                             f"{tp.__name__} (in YAML [1, 2], on the command line 1,2).")
        return [_scalar(name, v, tp) for v in value]
    return _scalar(name, value, tp)


def _scalar(name, value, tp):
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        number = _float_or_none(value)
        if number is not None:
            raise ValueError(f"config key {name!r}={value!r} is not a whole number; expected int (e.g. "
                             f"{max(int(number), 1) if math.isfinite(number) else 3}).")
    elif tp is float:
        number = _float_or_none(value)
        if number is not None:
            if not math.isfinite(number):
                raise ValueError(f"config key {name!r}={value!r} is not a finite number; expected a finite float.")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ValueError(f"config key {name!r}={value!r} has type {type(value).__name__}; expected {tp.__name__}.")


def _float_or_none(value):
    """``value`` as a float if it is a number or a string spelling one (bools are not numbers here), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _type_name(cls, name):
    tp, is_list, optional = _base_type(_hints(cls)[name])
    text = f"list of {tp.__name__}" if is_list else tp.__name__
    return text + (" or null" if optional else "")


def load_file(path) -> dict:
    """Read a YAML or JSON config file as plain data (``yaml.safe_load``: nothing in it is executed)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--config {path}: no such file.")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"--config {path}: not valid JSON ({err}).") from None
    elif path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.constructor.ConstructorError as err:  # a !!python/... tag: refused, never run
            raise ValueError(f"--config {path}: {' '.join(str(err).split())}; tfkd config files are plain data "
                             "(yaml.safe_load), tags that build Python objects are refused.") from None
        except yaml.YAMLError as err:
            raise ValueError(f"--config {path}: not valid YAML ({' '.join(str(err).split())}).") from None
    else:
        raise ValueError(f"--config {path}: expected a .yaml, .yml or .json file.")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a mapping of keys to values at the top, got "
                         f"{type(data).__name__}.")
    return data


def from_dict(cls, data: dict):
    """Build and validate a config from plain data; unknown keys and wrong types are errors."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} for {cls.__module__.split('.')[-1]}; valid keys: "
                         f"{sorted(known)}.")
    cfg = cls(**{k: _coerce(cls, k, v) for k, v in data.items()})
    cfg.validate()
    return cfg


def build_parser(cls, prog: str, description: str) -> argparse.ArgumentParser:
    # Each help string ends with its "(default: ...)" here; ArgumentDefaultsHelpFormatter would add a second one.
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", help="YAML or JSON file with config keys (flags override it)")
    parser.add_argument("--out", help="run directory (default: runs/<recipe>-<timestamp>)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run: finished stages are not redone")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own logging and Keras's per-epoch progress bars inside stages")
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        tp, is_list, _ = _base_type(_hints(cls)[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_ = f.metadata.get("help", "")
        if "(default:" not in help_:  # a help string may say its default in its own words
            shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) if is_list else default
            help_ += f" (default: {shown})"
        if tp is bool and not is_list:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:
            parser.add_argument(flag, dest=f.name, default=None, metavar=_type_name(cls, f.name).upper().replace(
                " ", "_"), help=help_)
    return parser


def parse_config(cls, argv, prog="tfkd run", description=""):
    """(config, runner options) from command-line flags, a ``--config`` file, and the defaults, in that priority."""
    parser = build_parser(cls, prog, description)
    ns = vars(parser.parse_args(argv))
    options = {k: ns.pop(k) for k in ("config", "out", "resume", "verbose")}
    data = load_file(options["config"]) if options["config"] else {}
    data.update({k: v for k, v in ns.items() if v is not None})
    return from_dict(cls, data), options


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def config_hash(cfg) -> str:
    """A short hash of every value of ``cfg`` (a config or its :func:`to_dict`): what a run's results depend on."""
    data = cfg if isinstance(cfg, dict) else to_dict(cfg)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old: dict, new: dict) -> str:
    """``"epochs: 6 -> 10, lr: 0.001 -> 0.01"``: the keys whose values differ between two config dicts."""
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k}: {old.get(k, '(absent)')!r} -> {new.get(k, '(absent)')!r}" for k in keys
                     if old.get(k) != new.get(k))
