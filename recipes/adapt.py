"""``tfkd run adapt``: teacher-student domain adaptation with parallel unlabeled data (Li et al., 2017).

A teacher is trained on the source domain. The target domain is the same content seen differently (here: MNIST
digits 6 and 9 flipped upside down, so a flipped 6 is not a 9 and the task stays well-posed). With *parallel*
unlabeled pairs, the student sees the target view and learns to match the teacher's output on the source view;
only the student is updated (the Distiller's two-view batches, no labels).

Arms, each evaluated on source and target test sets:

- **teacher** (source-trained);
- **adapted student** (Li et al.): starts as a copy of the teacher; soft-target KL at a temperature, and logit MSE
  (the method argues for logits, since softmax flattens differences between wrong classes);
- **input adapter**: the teacher stays frozen behind a learned linear map of the flattened input (identity at
  start), trained by the same distillation;
- **two-domain student**: a copy of the teacher distilled on the parallel pairs *and* on the teacher's own source
  outputs, to keep the source domain while learning the target.

Example:

    tfkd run adapt                       # real MNIST 6/9 from the data directory, 3 seeds
    tfkd run adapt --transform invert --classes 3,8
"""

from __future__ import annotations

import dataclasses
import numpy as np

from tfkd.recipes.common import progress
from tfkd.recipes.config import field
from tfkd.recipes.domains import (DomainConfig, DomainData, clone, domain_rows, export_stage, load_domains, scores,
                                  source_and_arms)

NAME = "adapt"
DESCRIPTION = "teacher-student adaptation with parallel unlabeled data (Li et al. 2017): MNIST 6/9 upside down"


@dataclasses.dataclass
class Config(DomainConfig):
    seeds: int = field(3, "repeat every arm with this many seeds")
    teacher_epochs: int = field(3, "teacher epochs on the source domain")
    epochs: int = field(5, "adaptation epochs for every student arm")
    adapter_epochs: int = field(5, "input adapter epochs")
    temperature: float = field(2.0, "temperature of the KL arm")


ARMS = ("teacher", "adapted_kl", "adapted_mse", "input_adapter", "two_domain")


def _input_adapter(teacher):
    """Frozen teacher copy behind a linear map of the flattened input, initialised to the identity."""
    import keras

    shape = teacher.input_shape[1:]
    size = int(np.prod(shape))
    inputs = keras.Input(shape)
    h = keras.layers.Flatten()(inputs)
    h = keras.layers.Dense(size, kernel_initializer="identity", bias_initializer="zeros", name="adapter")(h)
    h = keras.layers.Reshape(shape)(h)
    return keras.Model(inputs, clone(teacher, trainable=False)(h, training=False), name="input_adapter")


def _adapt_stage(cfg, ctx, d: DomainData, arm, seed):
    import keras

    from tfkd import training

    keras.utils.set_random_seed(seed)
    teacher = ctx.load_model(f"teacher_seed{seed - cfg.seed}")
    epochs, loss, temperature = cfg.epochs, "kl", cfg.temperature
    if arm == "input_adapter":
        student, epochs = _input_adapter(teacher), cfg.adapter_epochs
    else:
        student = clone(teacher)  # Li et al.: the student starts as the teacher
    if arm == "adapted_mse":
        loss, temperature = "mse", 1.0
    if arm == "two_domain":
        # Parallel pairs teach the target view; the source images paired with themselves keep the source view.
        x = (np.concatenate([d.x_target, d.x_source]), np.concatenate([d.x_source, d.x_source]))
    else:
        x = (d.x_target, d.x_source)
    name = f"{arm}_seed{seed - cfg.seed}"
    _, history = training.train_distilled(
        teacher, student, x, None, alpha=1.0, temperature=temperature, distill_loss=loss, epochs=epochs,
        batch_size=cfg.batch_size, lr=cfg.lr, validation_data=((d.test_target, d.test_source), d.y_test),
        checkpoint_dir=ctx.checkpoint_dir(name), log_dir=ctx.log_dir(name), label=name, verbose=int(ctx.verbose),
        callbacks=progress(ctx, name, epochs))
    ctx.save_model(student, name)
    return {**scores(student, d), "history": history}


def run(cfg: Config, ctx) -> dict:
    d = load_domains(cfg)
    results = source_and_arms(cfg, ctx, d, "teacher", cfg.teacher_epochs, ARMS[1:],
                              lambda arm, seed: _adapt_stage(cfg, ctx, d, arm, seed))
    export_info = export_stage(cfg, ctx, d, "two_domain_seed0") if cfg.export else None

    labels = {"teacher": "teacher (source-trained)", "adapted_kl": f"adapted student, KL at T={cfg.temperature:g}",
              "adapted_mse": "adapted student, logit MSE", "input_adapter": "input adapter + frozen teacher",
              "two_domain": "two-domain student"}
    rows = domain_rows(labels, results)
    two = results["two_domain"]
    worst = min(min(r["source"], r["target"]) for r in two)
    summary = [d.summary,
               "reference (Li et al. toy experiment): teacher about 0.999 source / 0.10 target; adapted student about "
               "0.999 target but about 0.10 source (it forgets the source); input adapter about 0.99 target after "
               "5 epochs.",
               f"two-domain student: worst domain over {cfg.seeds} seed(s) {worst:.4f} "
               f"({'meets' if worst >= 0.98 else 'MISSES'} the 0.98-on-both goal)."]
    return {"title": f"adapt: {cfg.dataset} {cfg.classes}, target = {cfg.transform}", "summary": summary,
            "tables": [{"title": f"Accuracy on each domain's test set (mean ± std over {cfg.seeds} seed(s))",
                        "columns": ["model", "source", "target"], "rows": rows}],
            "figures": [], "results": {"arms": results, "export": export_info}}
