"""One driver for the three training stages; what differs is a Recipe (training/recipes/).

The driver (``train``): on the devices of ``train.strategy``, seed, read the prepared data, ask
the recipe for its plan, run the plan's phases with one dvclive run and resumable checkpoints,
save the model, and write the metrics. A recipe's plan says what differs: the model, the views
it sees, the loss, the phases and what is saved. The helpers recipes share are here too: the
seed's two-phase schedule and the check of the batch size against the data.

BatchNormalization layers stay frozen (inference mode) when the backbone starts from pretrained
weights, to keep their statistics, unless ``train_batchnorm`` (a domain far from ImageNet: the
hard benchmark learns much faster with it); a randomly initialised backbone has none worth
keeping, so its unfrozen BatchNormalization layers train.
"""
from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from stages.common.core import layout
from stages.common.core.errors import UserError
from stages.common.core.hashing import json_sha256
from stages.common.core.json_files import write_json
from stages.common.core.params import param_values, stage_params
from stages.common.core.params_schema import ModelParams, Params
from stages.common.data.dataset import (
    UNLABELLED,
    UNLABELLED_FILE,
    PreparedDataset,
    load_prepared,
)
from stages.common.data.input_pipeline import cached_feature_passes, predict_logits
from stages.common.data.tfrecord_shards import Shards, open_unlabelled
from stages.common.models.freezing import head_on_features, set_trainable
from stages.common.scoring.metrics import f1_macro, trivial_baselines
from stages.common.training.devices import (
    LOST_WORKER_ERRORS,
    distribution_strategy,
    is_chief,
    lost_worker_message,
    seed_everything,
    set_precision,
)
from stages.common.training.distillation import hard_loss
from stages.common.training.phases import Phase, run_phase
from stages.common.training.resume import ResumeState, check_same_progress

keras = tf.keras


@dataclass
class StagePaths:
    """Where one training stage reads and writes (the pipeline's layout unless told)."""

    out: Path
    metrics: Path
    live: Path | None  # dvclive curves; None: none written
    checkpoints: Path
    shards: str | Path = layout.SHARDS  # or a URL every worker of a cluster reads (file://, gs://)
    prepared: Path = layout.PREPARED
    unlabelled: str | Path = layout.UNLABELLED  # images without labels, read by student and QAT
    teacher: Path = layout.TEACHER  # read by the student and QAT stages
    student: Path = layout.STUDENT  # read by the QAT stage
    worker_scratch: Path | None = None  # set on a multi-worker cluster's non-chief workers


@dataclass
class Plan:
    """What a recipe hands the driver: the model and its phases, each with its (train,
    validation) data; how progress is fingerprinted; how the model is saved; and the stage's
    own metrics, read once the phases have run."""

    model: keras.Model  # what is evaluated and saved (not a Distiller around it)
    phases: list[tuple[Phase, tuple]]
    val_inputs: tf.data.Dataset
    val_targets: np.ndarray
    fingerprint: tuple  # the inputs no param names (model hashes): see resume_key
    save: Callable[[Path], None]
    metrics: Callable[[], dict]
    # the images without labels the phases train on (None: none). Required, so that no recipe
    # can train on a pool that its checkpoints are not keyed by (plan_resume_key)
    unlabelled: Shards | None
    after_phase: Callable[[str, dict], None] | None = None


@dataclass(frozen=True)
class Recipe:
    """One training stage: its name (its dvclive and checkpoint folders), the model folder and
    metrics file it writes, and how it plans its training."""

    stage: str
    out: Path
    metrics: Path
    plan: Callable[[Params, StagePaths, PreparedDataset], Plan]
    mixed_precision_allowed: bool = True

    def paths(self, shards: str | Path = layout.SHARDS) -> StagePaths:
        """The pipeline's layout for this stage."""
        return StagePaths(self.out, self.metrics, layout.live_curves(self.stage),
                          layout.checkpoints(self.stage), shards)


def train(recipe: Recipe, params: Params, paths: StagePaths) -> dict:
    """Run a training stage end to end; returns the metrics it wrote."""
    return _on_devices(lambda on_device_paths: _train(recipe, params, on_device_paths), params,
                       paths, recipe.stage, recipe.mixed_precision_allowed)


def resume_key(stage: str, params: Params, inputs: tuple, dataset_fingerprint: str) -> str:
    """What a stage's checkpoints are valid for: every param the stage declares in dvc.yaml (so
    the key cannot drift from what DVC reruns it for), the files it reads that no param names
    (``inputs``: the hashes of the models it starts from) and the prepared data."""
    return json_sha256((stage, param_values(params, stage_params(stage)), inputs,
                        dataset_fingerprint))


def plan_resume_key(stage: str, params: Params, plan: Plan, dataset_fingerprint: str) -> str:
    """The resume key of a recipe's plan: its fingerprint and the content of the images without
    labels it trains on, so that a run on another pool starts over instead of resuming this one."""
    pool = () if plan.unlabelled is None else (plan.unlabelled.manifest["dataset_fingerprint"],)
    return resume_key(stage, params, plan.fingerprint + pool, dataset_fingerprint)


def _train(recipe: Recipe, params: Params, paths: StagePaths) -> dict:
    started = time.monotonic()
    seed_everything(params.seed)
    dataset = load_prepared(paths.prepared)
    plan = recipe.plan(params, paths, dataset)
    state = ResumeState(paths.checkpoints,
                        plan_resume_key(recipe.stage, params, plan, dataset.fingerprint()),
                        paths.worker_scratch)
    summaries = _run_schedule(plan, state, paths.live, recipe.stage)
    plan.save(paths.out)
    metrics = {**final_scores(plan.model, plan.val_inputs, plan.val_targets),
               "phases": summaries, **plan.metrics(),
               "wall_time_s": round(time.monotonic() - started, 1)}
    write_json(paths.metrics, metrics)
    state.clear()
    return metrics


def _on_devices(train_function: Callable[[StagePaths], dict], params: Params, paths: StagePaths,
                stage: str, mixed_precision_allowed: bool) -> dict:
    """Run a stage's training under ``train.strategy`` and ``train.mixed_precision``: models,
    optimizers and checkpoints are created inside the strategy's scope.

    Under multi_worker every worker runs the whole stage (saving a model reads synchronised
    variables, a collective op), but only the chief writes the model, metrics, curves and
    checkpoints; the others write theirs to a temporary folder removed at the end."""
    mixed = params.train.mixed_precision
    if mixed and not mixed_precision_allowed:
        print("note: QAT runs in float32 (its fake quantisation is float32); "
              "train.mixed_precision applies to the teacher and the student")
    scratch = None
    try:
        # first: a multi-worker strategy must exist before anything starts TensorFlow's runtime
        strategy = distribution_strategy(params.train.strategy)
        set_precision(mixed and mixed_precision_allowed)
        if strategy.num_replicas_in_sync > 1:
            print(f"training on {strategy.num_replicas_in_sync} devices "
                  f"({type(strategy).__name__}); batch sizes are global", flush=True)
        if not is_chief(strategy):
            scratch = Path(tempfile.mkdtemp(prefix=f"worker_{stage}_"))
            paths = replace(paths, out=scratch / "model", metrics=scratch / "metrics.json",
                            live=None, worker_scratch=scratch / "checkpoints")
            print(f"{stage}: not the chief: this worker's outputs go to {scratch}, removed at "
                  "the end", flush=True)
        with strategy.scope():
            return train_function(paths)
    except LOST_WORKER_ERRORS as error:
        if params.train.strategy != "multi_worker":
            raise
        # The failed collective leaves TensorFlow's all-reduce thread pool referenced from the
        # traceback's frames; freed at interpreter exit, after its pipe is closed, it would print
        # a traceback under the message. Freed here, it goes quietly.
        traceback.clear_frames(error.__traceback__)
        raise UserError(lost_worker_message(error, stage)) from None
    finally:
        set_precision(False)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _open_live(directory: Path | None, resume: bool):
    if directory is None:
        return None
    from scmrepo.exceptions import SCMError

    from dvclive import Live

    # The pipeline's dvc.yaml declares the plots; dvclive must not edit it or make experiments.
    try:
        return Live(str(directory), resume=resume, save_dvc_exp=False, dvcyaml=False)
    except SCMError as error:  # dvclive 3.49 asks git for HEAD even when there is none yet
        raise UserError(f"{directory}: dvclive cannot start ({error}): the git repository has no "
                        "commit yet; commit once (git add -A && git commit) and run again"
                        ) from None


def _run_schedule(plan: Plan, state: ResumeState, live_dir: Path | None, stage: str) -> dict:
    """Run the phases in order with one dvclive run across them; returns their summaries."""
    summaries = {}
    check_same_progress(state, tf.distribute.get_strategy())
    live = _open_live(live_dir, resume=state.has_progress())
    try:
        for phase, (train_data, validation) in plan.phases:
            own = phase.model is not None
            summaries[phase.name] = run_phase(phase, phase.model if own else plan.model,
                                              train_data, validation,
                                              phase.val_inputs if own else plan.val_inputs,
                                              plan.val_targets, state, live, stage)
            if plan.after_phase is not None:
                plan.after_phase(phase.name, summaries[phase.name])
    finally:
        if live is not None:
            live.end()
    return summaries


def final_scores(model: keras.Model, val_inputs, val_targets: np.ndarray) -> dict:
    logits = predict_logits(model, val_inputs)
    return {
        "val_loss": float(hard_loss(tf.constant(val_targets), tf.constant(logits))),
        "val_f1_macro": f1_macro(val_targets, logits > 0),
        "baselines": trivial_baselines(val_targets),
    }


def check_batch(dataset: PreparedDataset, batch_size: int, key: str) -> None:
    if not dataset.splits["val"]:
        raise UserError("the val split is empty after prepare: validation and early stopping "
                        "need it")
    if batch_size > len(dataset.splits["train"]):
        print(f"note: {key} {batch_size} exceeds the {len(dataset.splits['train'])} training "
              "images: each epoch is one smaller batch")


@dataclass
class HeadData:
    """What the head phase trains on: the model's own (images, targets) batches, or, with
    ``head_feature_passes``, the head alone (``model``) on cached backbone features."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    model: keras.Model | None = None
    val_inputs: tf.data.Dataset | None = None
    steps_per_epoch: int | None = None  # the cached passes' dataset is endless
    inputs: str = "images"  # what the head saw, as the stage's metrics record it


def head_data(model: keras.Model, config: ModelParams, section: str, shards: Shards, view: str,
              images: tuple, params: Params) -> HeadData:
    """The head phase's data: ``images`` (train, validation) as they are, unless
    ``config.head_feature_passes`` (K) and a head phase to run: then the frozen backbone's
    features of K fixed augmented passes and of val, computed once (models.freezing
    .head_on_features says why that is exact)."""
    passes = config.head_feature_passes
    if not passes or not config.epochs_head:
        return HeadData(*images)
    extractor, head = head_on_features(model, f"{section}.head_feature_passes")
    train, steps, validation = cached_feature_passes(
        shards, view, extractor, passes, config.batch_size, params.seed, params.augmentation,
        params.shards.shuffle_buffer, images[1])
    plural = "es" if passes > 1 else ""
    return HeadData(train, validation, head, validation.map(lambda features, _: features), steps,
                    f"backbone features of {passes} fixed augmented pass{plural}")


@dataclass
class TwoPhases:
    """The seed's schedule: head warm-up, then the top of the backbone (early stopping, LR
    reduction); ``finetune_model`` is the model itself or a Distiller around it. ``trainable``
    records how many backbone layers each phase trained, once it has run."""

    phases: list = field(default_factory=list)
    trainable: dict = field(default_factory=dict)

    @classmethod
    def of(cls, model: keras.Model, config: ModelParams, head: HeadData,
           finetune_model: keras.Model, finetune_data: tuple,
           finetune_steps: int | None = None, finetune_callbacks: tuple = (),
           finetune_facts=None) -> "TwoPhases":
        schedule = cls()
        # a random backbone has no statistics worth keeping; pretrained ones are kept unless
        # train_batchnorm says the new domain needs its own
        freeze_batchnorm = config.weights is not None and not config.train_batchnorm

        def configure(phase_name, fraction=0.0):
            def apply():
                schedule.trainable[phase_name] = set_trainable(model, phase_name, fraction,
                                                               freeze_batchnorm)
            return apply

        head_loss = keras.losses.BinaryCrossentropy(from_logits=True,
                                                    label_smoothing=config.label_smoothing)
        schedule.phases = [
            (Phase("head", config.epochs_head, config.lr_head, config.weight_decay,
                   configure("head"), head.model or model, head_loss,
                   steps_per_epoch=head.steps_per_epoch, model=head.model,
                   val_inputs=head.val_inputs, ema_decay=config.ema_decay),
             (head.train, head.validation)),
            (Phase("finetune", config.epochs_finetune, config.lr_finetune,
                   config.weight_decay, configure("finetune", config.unfreeze_fraction),
                   finetune_model, head_loss if finetune_model is model else None,
                   early_stopping_patience=config.early_stopping_patience,
                   early_stopping_monitor=config.early_stopping_monitor,
                   reduce_lr_patience=config.reduce_lr_patience,
                   steps_per_epoch=finetune_steps,
                   cosine_warmup_epochs=(config.warmup_epochs if config.lr_schedule == "cosine"
                                         else None),
                   callbacks=finetune_callbacks, ema_decay=config.ema_decay,
                   lr_layer_decay=config.lr_layer_decay, summary_facts=finetune_facts),
             finetune_data),
        ]
        return schedule


def unlabelled_images(params: Params, alpha: float, paths: StagePaths, dataset: PreparedDataset,
                      sizes: dict[str, int], stage: str) -> Shards | None:
    """The images without labels a distilling phase trains on, or None:
    ``distillation.use_unlabelled`` asks for them, and only a teacher in use (``alpha``, the
    weight of the labels' term, below 1) labels them."""
    if not params.distillation.use_unlabelled:
        return None
    if alpha >= 1.0:
        print(f"{stage}: distillation alpha {alpha:g}, the teacher is not used, so the images "
              "without labels are not either (distillation.use_unlabelled)", flush=True)
        return None
    unlabelled = open_unlabelled(paths.unlabelled, dataset, sizes)
    if not unlabelled.count(UNLABELLED):
        raise UserError(f"distillation.use_unlabelled is true, but {paths.unlabelled} holds no "
                        f"image: list them in {Path(dataset.dataset_dir) / UNLABELLED_FILE}, "
                        "one image name of images/ per line, and run the unlabelled_images "
                        "stage (dvc repro)")
    print(f"{stage}: {unlabelled.count(UNLABELLED)} images without labels join the "
          f"{len(dataset.splits['train'])} training images, the teacher's "
          "sigmoid their hard target (distillation.use_unlabelled)", flush=True)
    return unlabelled

