"""The recipe runner behind ``tfkd run``: run directories, stages that survive ``kill -9``, progress, reports.

A recipe module defines ``NAME``, ``DESCRIPTION``, a ``Config`` dataclass (see :mod:`tfkd.recipes.config`) and
``run(config, ctx) -> dict`` (the report). Work is split into named stages through :meth:`RunContext.stage`; a
stage's result is recorded in ``state.json`` only once its artifacts are complete, so ``--resume`` skips finished
stages and a stage in progress restarts from its last epoch checkpoint (:func:`tfkd.training.fit`).

Example:

    tfkd run compress --dataset mnist --seeds 3
    tfkd run compress --resume runs/compress-20261123-101500
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from tfkd import distribute, io
from tfkd.recipes import config as config_lib

# recipe name -> module
RECIPES = {
    "compress": "tfkd.recipes.compress",
    "takd": "tfkd.recipes.takd",
    "blend": "tfkd.recipes.blend",
    "teacher-free": "tfkd.recipes.teacher_free",
    "adapt": "tfkd.recipes.adapt",
    "noisy-student": "tfkd.recipes.noisy_student",
    "dann": "tfkd.recipes.dann",
    "conservative": "tfkd.recipes.conservative",
    "layer-transfer": "tfkd.recipes.layer_transfer",
    "tune": "tfkd.recipes.tune",
    "progressive": "tfkd.recipes.progressive",
    "zero-shot": "tfkd.recipes.zero_shot",
    "multitask": "tfkd.recipes.multitask",
    "self-taught": "tfkd.recipes.self_taught",
}

_STATE = "state.json"
_CONFIG = "config.json"
# A run directory is tfkd's own: made by tfkd (or an empty folder it was given) and marked so. tfkd writes,
# replaces and deletes files only in a marked folder; any other non-empty folder is refused before a byte changes.
MARKER = ".tfkd-run"
# Held with fcntl.flock while a run uses the directory: the OS drops it when the process ends, kill -9 included.
LOCK = ".tfkd-lock"
# What a marked directory may hold and still take a new run (a run that failed on bad input left only these).
_FRESH = {MARKER, LOCK, _CONFIG}


class RunDirError(ValueError):
    """The run directory cannot be used (not tfkd's, in use, edited by hand); nothing in it was changed."""


class RunLock:
    """An exclusive ``fcntl.flock`` on ``<run dir>/.tfkd-lock``, released by :meth:`release` or the process's end."""

    def __init__(self, directory):
        import fcntl

        self.path = Path(directory) / LOCK
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            self._fd = None
            raise RunDirError(f"{directory} is in use by another tfkd run (pid {holder}); wait for it to end (or "
                              "stop it), then --resume; two runs in one directory would overwrite each other.") \
                from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self):
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def claim(directory, *, new: bool) -> RunLock:
    """Check that ``directory`` may hold a run, lock it, and mark it as tfkd's; raise :class:`RunDirError` if not.

    ``new``: a fresh run (the folder must not exist, be empty, or be a marked folder with no run started in it);
    otherwise ``--resume`` (the folder must be marked). Nothing is written or deleted before the checks pass.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise RunDirError(f"{directory} is a file, not a directory; give --out a new folder name.")
    marked = (directory / MARKER).is_file()
    if new and not marked and directory.is_dir() and any(directory.iterdir()):
        raise RunDirError(f"{directory} already exists and is not a tfkd run directory (no {MARKER} marker); tfkd "
                          "writes and deletes files in its run directory, so it only takes a new or an empty "
                          "folder: choose another --out.")
    if not new and not marked:
        if not (directory / _CONFIG).is_file():
            raise RunDirError(f"no {_CONFIG} there; is it a tfkd run directory?")
        raise RunDirError(f"it is not marked as a tfkd run directory (no {MARKER} file), so tfkd will not write "
                          f"in it; if tfkd made it, create the marker (touch {directory / MARKER}) and retry.")
    directory.mkdir(parents=True, exist_ok=True)
    lock = RunLock(directory)
    try:
        if new and marked and set(p.name for p in directory.iterdir()) - _FRESH:
            raise RunDirError(f"{directory} already holds a run; use --resume {directory} to continue it or choose "
                              "another --out.")
        if not marked:
            io.write_json(directory / MARKER, {"tfkd_run_directory": True, "tfkd_version": _version()})
    except BaseException:
        lock.release()
        raise
    return lock


def _digest(name, config_sha, result) -> str:
    """Binds a finished stage's result to its name and the config it ran under (``state.json`` edits show)."""
    text = json.dumps([name, config_sha, result], sort_keys=True, default=io._jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RunContext:
    """One run's directory, stage bookkeeping and progress output."""

    def __init__(self, directory, recipe, config, verbose=False):
        self.dir = Path(directory)
        self.recipe = recipe
        self.config = config
        self.verbose = verbose
        self.t0 = time.time()
        self.config_sha = config_lib.config_hash(config) if config is not None else None
        self.dir.mkdir(parents=True, exist_ok=True)
        state_path = self.dir / _STATE
        self.state = self._read_state(state_path) if state_path.exists() else {
            "recipe": recipe, "config_sha256": self.config_sha,
            "config": config_lib.to_dict(config) if config is not None else None, "stages": {}}
        io.remove_stale_temp_files(self.dir)
        self._planned = []
        self._notes = []  # one-line summaries of the trainings in the stage under way (see stage_note)
        self._models = {}  # models built in this process, so a finished stage's model is not reloaded from disk

    def _read_state(self, path):
        """``state.json``, checked: every finished stage has its result, unedited, under this run's config."""
        where = f"{path}"
        fix = "restore it, or start a new run with another --out"
        try:
            state = io.read_json(path)
            stages = state["stages"]
            if not isinstance(stages, dict):
                raise TypeError(f"'stages' is a {type(stages).__name__}")
        except (ValueError, KeyError, TypeError) as e:
            raise RunDirError(f"{where} is not a valid tfkd run state ({type(e).__name__}: {e}); {fix}.") from None
        if self.config_sha is not None and state.get("config_sha256") not in (None, self.config_sha):
            changed = config_lib.differences(state.get("config") or {}, config_lib.to_dict(self.config))
            raise RunDirError(f"the config changed since this run's finished stages ran ({changed or 'hash '}"
                              f"{'' if changed else state.get('config_sha256') + ' -> ' + self.config_sha}); "
                              "their results would not match it. Restore config.json, or start a new run with "
                              "another --out.")
        for name, entry in stages.items():
            if not isinstance(entry, dict) or "result" not in entry or entry.get("status") != "done":
                raise RunDirError(f"{where}: stage {name!r} has no result (the file was edited or damaged); {fix}.")
            if entry.get("digest") != _digest(name, entry.get("config_sha256"), entry["result"]):
                raise RunDirError(f"{where}: stage {name!r} was changed after it finished (its result no longer "
                                  f"matches its digest); tfkd will not report numbers it did not measure. {fix}.")
            if self.config_sha is not None and entry.get("config_sha256") != self.config_sha:
                raise RunDirError(f"{where}: stage {name!r} ran under another config (hash "
                                  f"{entry.get('config_sha256')}, this run's is {self.config_sha}); {fix}.")
        return state

    # -- layout --------------------------------------------------------------------------------------------------
    def path(self, *parts) -> Path:
        p = self.dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def relative(self, path) -> str:
        """``path`` relative to the run directory, as reports cite files."""
        return str(Path(path).relative_to(self.dir))

    def checkpoint_dir(self, stage) -> Path:
        return self.dir / "checkpoints" / stage.replace("/", "_")

    def log_dir(self, stage) -> Path:
        return self.dir / "logs" / stage.replace("/", "_")

    # -- stages --------------------------------------------------------------------------------------------------
    def plan(self, names):
        """Declare the stages this run will go through, for 'stage k of n' progress."""
        self._planned = list(names)

    def done(self, name) -> bool:
        return self.state["stages"].get(name, {}).get("status") == "done"

    def stage_note(self, text):
        """A one-line summary of a training inside the stage under way; in a log it joins the stage's last line."""
        self._notes.append(text.strip())

    def stage(self, name, fn):
        """Run ``fn()`` as stage ``name`` unless it finished before; returns its (JSON-able) result.

        On a terminal a stage prints a header, its progress bars (redrawn in place) and a closing line; in a log
        (stdout not a terminal) it prints one line when it ends, with the summary of each training it ran.
        """
        index = self._planned.index(name) + 1 if name in self._planned else len(self.state["stages"]) + 1
        total = max(len(self._planned), index)
        elapsed = _clock(time.time() - self.t0)
        if self.done(name):
            print(f"[{index}/{total}] {name}: done in an earlier session, skipped  [{elapsed}]", flush=True)
            return self.state["stages"][name]["result"]
        interactive = _interactive()
        if interactive:
            print(f"[{index}/{total}] {name} ...  [{elapsed}]", flush=True)
        started = time.time()
        self._notes = []
        try:
            result = json.loads(json.dumps(fn(), default=io._jsonable))  # as state.json will hold it
        except BaseException:
            if not interactive:  # the error that follows needs the stage it happened in
                print(f"[{index}/{total}] {name}: failed after {_clock(time.time() - started)}", flush=True)
            raise
        self.state["stages"][name] = {"status": "done", "result": result, "seconds": round(time.time() - started, 2),
                                      "config_sha256": self.config_sha,
                                      "digest": _digest(name, self.config_sha, result)}
        io.write_json(self.dir / _STATE, self.state)
        notes = "" if interactive or not self._notes else " | " + " | ".join(self._notes)
        print(f"[{index}/{total}] {name}: finished in {_clock(time.time() - started)}{notes}"
              + ("" if interactive else f"  [{_clock(time.time() - self.t0)}]"), flush=True)
        return result

    # -- models --------------------------------------------------------------------------------------------------
    def save_model(self, model, name) -> str:
        path = self.path("models", f"{name}.keras")
        io.require_space(path, io.h5_bytes_estimate(model), "the model archive")
        with io.atomic_path(path) as tmp:
            model.save(tmp)
        self._models[name] = model
        return str(path.relative_to(self.dir))

    def load_model(self, name):
        if name not in self._models:
            from tfkd.loading import load_model  # safe_mode, and a clear error for a damaged archive

            self._models[name] = load_model(self.dir / "models" / f"{name}.keras", safe_mode=True)
        return self._models[name]


def _interactive() -> bool:
    """Whether stdout is a terminal (progress redrawn in place) rather than a log or a pipe (one line a stage)."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _usage():
    lines = ["usage: tfkd run <recipe> [options]   |   tfkd run --resume RUN_DIR", "", "recipes:"]
    for name, module in RECIPES.items():
        lines.append(f"  {name:<14} {importlib.import_module(module).DESCRIPTION}")
    lines += ["", "Run 'tfkd run <recipe> --help' for the recipe's options."]
    return "\n".join(lines)


def _default_dir(recipe):
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{recipe}-{stamp}"


# Flags that may come with --resume: they cannot change what a run computes.
_RESUME_FLAGS = ("--verbose",)


def main(argv) -> int:
    """Entry point of ``tfkd run``."""
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--resume":
        if len(argv) < 2:
            print("tfkd run --resume needs the run directory: tfkd run --resume runs/compress-...", file=sys.stderr)
            return 2
        return resume(argv[1], extra=argv[2:])
    recipe = argv[0]
    if recipe not in RECIPES:
        print(f"tfkd run: unknown recipe {recipe!r}; expected one of: {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    module = importlib.import_module(RECIPES[recipe])
    try:
        cfg, options = config_lib.parse_config(module.Config, argv[1:], prog=f"tfkd run {recipe}",
                                                description=module.DESCRIPTION)
    except (ValueError, FileNotFoundError) as e:
        print(f"tfkd run {recipe}: {e}", file=sys.stderr)
        return 2
    if options["resume"]:
        rest = [a for a in argv[1:] if a != "--resume" and not a.startswith("--resume=")
                and a != options["resume"]]
        return resume(options["resume"], extra=rest, recipe=recipe)
    run_dir = Path(options["out"]) if options["out"] else _default_dir(recipe)
    # Other workers of a multi-worker run see the chief's directory fill up; only the chief claims it.
    return _claimed(run_dir, new=True, prog=f"tfkd run {recipe}",
                    then=lambda: execute(module, cfg, run_dir, verbose=options["verbose"]))


def _claimed(run_dir, *, new, prog, then) -> int:
    """Run ``then()`` holding the run directory (checked, locked, marked); one line and exit 2 if it is refused."""
    if not distribute.is_chief():
        return then()
    try:
        lock = claim(run_dir, new=new)
    except (RunDirError, OSError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    try:
        return then()
    finally:
        lock.release()


def resume(run_dir, extra=(), recipe=None) -> int:
    run_dir = Path(run_dir)
    prog = f"tfkd run --resume {run_dir}"
    refused = [a for a in extra if a not in _RESUME_FLAGS]
    if refused:
        print(f"{prog}: {' '.join(refused)} cannot be given with --resume: a resumed run keeps the config it "
              f"started with (only {', '.join(_RESUME_FLAGS)} may be added). To change it, start a new run with "
              "another --out.", file=sys.stderr)
        return 2

    def go():
        config_path = run_dir / _CONFIG
        try:
            saved = io.read_json(config_path)
            name = saved["recipe"]
            module = importlib.import_module(RECIPES[name])
            cfg = config_lib.from_dict(module.Config, saved["config"])
        except (ValueError, KeyError, TypeError, OSError) as e:  # JSONDecodeError is a ValueError
            print(f"{prog}: {config_path} is not a valid tfkd run config ({type(e).__name__}: {e}); restore it or "
                  "start a new run.", file=sys.stderr)
            return 2
        if recipe is not None and recipe != name:
            print(f"{prog}: that directory holds a {name} run, not {recipe}; use tfkd run --resume {run_dir}.",
                  file=sys.stderr)
            return 2
        recorded = saved.get("config_sha256")
        if recorded is not None and recorded != config_lib.config_hash(cfg):
            print(f"{prog}: {config_path} was edited after the run started (its config no longer matches the hash "
                  "recorded then), so the finished stages may not match it; restore it, or start a new run with "
                  "another --out.", file=sys.stderr)
            return 2
        print(f"resuming {name} in {run_dir}", flush=True)
        return execute(module, cfg, run_dir, verbose="--verbose" in extra)

    return _claimed(run_dir, new=False, prog=prog, then=go)


def execute(module, cfg, run_dir, verbose=False) -> int:
    """Run ``module.run(cfg, ctx)`` in ``run_dir`` and write the report; returns a process exit code.

    Bad input met during the run (a data file with the wrong layout, a damaged ``.keras`` file, a NaN loss, a full
    disk) ends it with one line naming the problem, exit code 2 (input) or 1 (fault), and no traceback unless
    ``verbose``; whatever finished before stays on disk for ``--resume``. Ctrl-C ends it with one line (exit 130).
    """
    try:
        return _execute(module, cfg, run_dir, verbose)
    except KeyboardInterrupt:
        if verbose:
            traceback.print_exc()
        print(f"tfkd run {module.NAME}: interrupted; finished stages and epoch checkpoints are kept: "
              f"tfkd run --resume {run_dir}", file=sys.stderr, flush=True)
        return 130
    except (ValueError, FloatingPointError, OSError) as e:
        if verbose:
            traceback.print_exc()
        # Input problems (bad data file, damaged model file, missing path) exit 2; faults mid-run (a NaN loss,
        # a full disk) exit 1 and point at --resume, since finished stages are kept.
        code = 2 if isinstance(e, (ValueError, FileNotFoundError)) else 1
        hint = "" if code == 2 else f"; finished stages are kept: tfkd run --resume {run_dir}"
        more = "" if verbose else " (--verbose shows the traceback)"
        print(f"tfkd run {module.NAME}: {type(e).__name__}: {e}{hint}{more}", file=sys.stderr, flush=True)
        return code


def _execute(module, cfg, run_dir, verbose):
    # A multi-worker strategy must exist before any other TensorFlow op runs in this process.
    strategy = distribute.get_strategy(cfg.strategy)
    import keras

    recipe = module.NAME
    run_dir = Path(run_dir)
    # The chief writes the run directory; other workers write a private copy that is deleted at the end.
    work_dir = distribute.worker_dir(run_dir, strategy)
    try:
        config_path = work_dir / _CONFIG
        if not (config_path.exists() and (work_dir / _STATE).exists()):  # a resumed run keeps its file as it is
            io.write_json(config_path, {"recipe": recipe, "config": config_lib.to_dict(cfg),
                                        "config_sha256": config_lib.config_hash(cfg), "tfkd_version": _version()})
        ctx = RunContext(work_dir, recipe, cfg, verbose=verbose)
        preflight(cfg)
        print(f"tfkd run {recipe} -> {run_dir}" + ("" if work_dir == run_dir else f" (this worker: {work_dir})")
              + (f", {strategy.num_replicas_in_sync} replicas" if cfg.strategy != "none" else ""), flush=True)
        keras.utils.set_random_seed(cfg.seed)
        with strategy.scope():  # every model, optimizer and Distiller a recipe builds is mirrored
            report = module.run(cfg, ctx)
        from tfkd.recipes import report as report_lib

        paths = report_lib.write(report, work_dir, recipe=recipe, config=config_lib.to_dict(cfg),
                                 seconds=time.time() - ctx.t0)
        # A log gets the summary and the main table; report.md has everything (a terminal shows it all, as ever).
        print(report_lib.to_markdown(report) if _interactive() else report_lib.to_brief(report), flush=True)
        print(f"report: {paths['markdown']}  (JSON: {paths['json']})", flush=True)
    finally:
        distribute.release_worker_dir(work_dir, run_dir, strategy)
    return 0


# Config fields that name models: a spec ("family:size") or a .keras file, alone or in a list.
_MODEL_FIELDS = ("teacher", "student", "weak", "model", "chain", "teachers", "ta_candidates", "models")


def preflight(cfg):
    """Check what ``cfg`` names before the first stage, so that bad input never costs a stage of training.

    Model specs must parse; for recipes that train on one dataset with a validation split, the data is loaded and
    the split checked (it must leave training examples), every spec must build for that data, and a ``.keras``
    file must load (safe mode) with the data's input shape and class count.
    """
    from tfkd import models

    refs = []
    for name in _MODEL_FIELDS:
        value = getattr(cfg, name, None)
        refs += [(name, v) for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    from tfkd import applications

    for name, spec in refs:
        if spec.endswith(".keras"):
            continue
        if applications.is_spec(spec):
            applications.parse(spec)  # the name and options; the build for the data's shape comes below
            continue
        family, _, size = (part.strip() for part in spec.partition(":"))
        if not _ or family.lower() not in models.FAMILIES:
            raise ValueError(f"{name}={spec!r} is not a model spec or a .keras file; expected 'family:size', one "
                             f"of: {models._families_help()}.")
        try:
            models.FAMILIES[family.lower()][1](size)
        except ValueError as err:
            raise ValueError(f"{name}={spec!r}: {err}.") from None
    if not (hasattr(cfg, "dataset") and hasattr(cfg, "val_fraction")):
        return
    from tfkd import data as data_lib
    from tfkd.recipes import common

    splits = data_lib.load(cfg.dataset, data_dir=cfg.data_dir, **common.load_options(cfg))
    common.check_input_scale(cfg, splits)
    if len(splits.x_train) == 0:
        raise data_lib.DataFormatError(f"dataset {cfg.dataset!r} ({splits.source}) has an empty training split; "
                                       "there is nothing to train on.")
    if cfg.n_train or cfg.n_test:
        splits = data_lib.subset(splits, n_train=cfg.n_train, n_test=cfg.n_test, seed=cfg.seed)
    x_fit, _, x_val, _ = common.split_validation(splits.x_train, splits.y_train, cfg.val_fraction, cfg.seed)
    if len(x_fit) == 0:
        chosen = f"n_train={cfg.n_train}" if cfg.n_train else f"the {len(splits.x_train)} training examples"
        raise ValueError(f"{chosen}: no example is left to train on, since the validation split (val_fraction="
                         f"{cfg.val_fraction:g}) takes at least one example of each class, all {len(x_val)} here. "
                         f"Use --n-train {2 * splits.num_classes} or more.")
    shape, classes = tuple(splits.input_shape), int(splits.num_classes)
    import warnings

    for name, spec in refs:
        try:
            with warnings.catch_warnings():  # a slow-BatchNorm warning is shown once, when the model is built for real
                warnings.simplefilter("ignore")
                models.build(spec, shape, classes)  # the family's own checks; a .keras file's shape and classes
        except ValueError as err:
            raise ValueError(f"{name}={spec!r}: {err} (dataset {cfg.dataset}: inputs {shape}, {classes} "
                             "classes)") from None


def _version():
    from tfkd._version import __version__

    return __version__


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main(sys.argv[1:]))
