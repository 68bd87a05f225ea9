"""The ``tfkd`` command: one entry point that dispatches to sub-command modules.

Each sub-command lives next to the code it drives and exposes ``main(argv) -> int``; this file
only routes, so adding a sub-command is one line in ``SUBCOMMANDS`` and nothing here imports
TensorFlow until a sub-command runs (``tfkd --help`` is instant).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tfkd._version import __version__

# name -> (module exposing main(argv) -> int, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("tfkd.recipes.runner", "Run a recipe end to end (compress, takd, blend, adapt, ...) and write a report"),
    "export": ("tfkd.export.cli", "Export a .keras model to TFLite/SavedModel/ONNX, validated, with size and latency"),
    "tune": ("tfkd.recipes.tune", "Search student / teacher-assistant sizes under a budget (= tfkd run tune)"),
    "bench": ("benchmarks", "Run a benchmark: python -m benchmarks.<name> [args], from the repo root only"),
}


def _parser() -> argparse.ArgumentParser:
    lines = [f"  {name:<10} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    parser = argparse.ArgumentParser(
        prog="tfkd",
        description="Knowledge distillation and model compression for TensorFlow/Keras.",
        epilog="sub-commands:\n" + "\n".join(lines) + "\n\nRun 'tfkd <sub-command> --help' for its options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tfkd {__version__}")
    parser.add_argument("command", nargs="?", metavar="sub-command", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    ns = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if ns.command is None:
        parser.print_help()
        return 0
    if ns.command not in SUBCOMMANDS:
        parser.error(f"unknown sub-command {ns.command!r}; expected one of: {', '.join(SUBCOMMANDS)}")
    if "--verbose" not in ns.args:
        from tfkd import console

        console.quiet()  # before any sub-command imports TensorFlow; --verbose keeps its logging
    if ns.command == "bench":
        return _bench(ns.args)
    module_name, _ = SUBCOMMANDS[ns.command]
    module = importlib.import_module(module_name)
    return int(module.main(ns.args) or 0)


def _bench(args) -> int:
    """``tfkd bench``: a launcher for ``benchmarks/``, which is not installed and runs from the repository root.

    It runs ``python -m benchmarks args`` in a child process, whose own rules put the current directory first on
    its path; this process's ``sys.path`` is left alone.
    """
    import subprocess
    from pathlib import Path

    if not (Path.cwd() / "benchmarks" / "__init__.py").is_file():
        print(f"tfkd bench: no benchmarks/ folder in {os.getcwd()}; run it from the tfkd repository root "
              "(benchmarks/ is part of the repository, not of the installed package).", file=sys.stderr)
        return 2
    try:
        return subprocess.call([sys.executable, "-m", "benchmarks", *args])
    except KeyboardInterrupt:  # the child got the same Ctrl-C and reports it itself
        return 130

if __name__ == "__main__":
    sys.exit(main())
