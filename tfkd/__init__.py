"""tfkd: knowledge distillation and model compression for TensorFlow/Keras.

Public names are loaded lazily, so ``import tfkd`` stays cheap and does not import Keras 3.
That matters for the pruning/QAT track, which runs in its own process under legacy Keras
(tensorflow-model-optimization) and must be able to import ``tfkd.models`` before any
Keras 3 import happens.

Example:

    import tfkd
    distiller = tfkd.Distiller(teacher, student, temperature=4.0, alpha=0.9)
"""

import importlib

from tfkd._version import __version__

# public name -> module that defines it
_LAZY = {
    "Distiller": "tfkd.distiller",
    "TeacherEnsemble": "tfkd.teachers",
    "TeacherCache": "tfkd.teachers",
    "NonFiniteLossError": "tfkd.distiller",
    "cache_teacher_logits": "tfkd.teachers",
    "AlphaSchedule": "tfkd.schedules",
    "TemperatureSchedule": "tfkd.schedules",
    "TermSchedule": "tfkd.schedules",
    "losses": "tfkd.losses",
    "terms": "tfkd.terms",
    "features": "tfkd.features",
    "schedules": "tfkd.schedules",
    "teachers": "tfkd.teachers",
    "data": "tfkd.data",
    "models": "tfkd.models",
    "tuning": "tfkd.tuning",
    "training": "tfkd.training",
    "layers": "tfkd.layers",
    "io": "tfkd.io",
    "distribute": "tfkd.distribute",
    "augment": "tfkd.augment",
    "pseudo": "tfkd.pseudo",
    "progress": "tfkd.progress",
    "loading": "tfkd.loading",
    "console": "tfkd.console",
    "checks": "tfkd.checks",
    "applications": "tfkd.applications",
    "export": "tfkd.export",
    "recipes": "tfkd.recipes",
    "replay": "tfkd.replay",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tfkd' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
