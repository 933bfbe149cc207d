"""Phases of a training schedule, resumable.

- ``Phase`` + ``run_phase``: one ``fit`` with its learning rate, trainable layers, early
  stopping and LR reduction. A killed stage that is started again continues from its last
  finished epoch (Keras ``BackupAndRestore``) and skips finished phases (``ResumeState``,
  ``resume.py``).
- With ``lr_layer_decay``, each backbone block trains at its own learning rate
  (``layerwise.py``).
- With ``ema_decay``, validation, early stopping and the weights a phase keeps are an
  exponential moving average of the weights (``weight_average.py``).
- ``Validation``, ``EpochProgress``: per-epoch validation loss and macro-F1 (threshold 0.5)
  in the logs, and one readable progress line per epoch with its time and the time left in the
  phase.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf

from stages.common.data.input_pipeline import predict_logits
from stages.common.scoring.metrics import f1_macro
from stages.common.training.layerwise import LayerwiseAdamW, layerwise_multipliers
from stages.common.training.resume import ResumeState
from stages.common.training.weight_average import WeightAverage

keras = tf.keras


def _val_f1_macro(model: keras.Model, inputs: tf.data.Dataset, targets: np.ndarray) -> float:
    return f1_macro(targets, predict_logits(model, inputs) > 0)


def validation_logs(fit_model: keras.Model, loss, saved_model: keras.Model,
                    validation: tf.data.Dataset, targets: np.ndarray) -> dict:
    """The val_* entries of an epoch's logs from one pass over the validation batches: the loss
    terms averaged as fit's own validation averages them (a Distiller's terms unweighted per
    batch, as its test_step's trackers do; a plain model's compiled ``loss``, regularisation
    included, weighted by batch size, as Keras does) and macro-F1 at 0.5 (logit > 0)."""
    from stages.common.training.distillation import Distiller

    distilled = isinstance(fit_model, Distiller)
    logits, terms, weights = [], [], []
    for inputs, labels in validation:
        if distilled:
            student_images, teacher_input = inputs
            batch_logits = saved_model(student_images, training=False)
            terms.append([float(term) for term in
                          fit_model.validation_terms(labels, batch_logits, teacher_input)])
            weights.append(1.0)
        else:
            batch_logits = saved_model(inputs, training=False)
            terms.append([float(loss(labels, batch_logits))
                          + sum(float(extra) for extra in saved_model.losses)])
            weights.append(float(len(labels)))
        logits.append(batch_logits.numpy())
    names = ("loss", "hard_loss", "soft_loss") if distilled else ("loss",)
    means = np.average(np.array(terms, dtype=np.float64), axis=0, weights=weights)
    return {**{f"val_{name}": float(mean) for name, mean in zip(names, means)},
            "val_f1_macro": f1_macro(targets, np.concatenate(logits) > 0)}


class Validation(keras.callbacks.Callback):
    """Puts the val_* entries in each epoch's logs (``validation_logs``): fit itself is given
    no validation data, since its validation would run the model over the same images a second
    time for the loss alone.

    Must come before the callbacks that read the logs (early stopping, dvclive, progress).
    """

    def __init__(self, phase: "Phase", saved_model: keras.Model, validation: tf.data.Dataset,
                 targets: np.ndarray):
        super().__init__()
        self.phase, self.saved_model = phase, saved_model
        self.validation, self.targets = validation, targets

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(validation_logs(self.phase.fit_model, self.phase.loss, self.saved_model,
                                        self.validation, self.targets))


class EpochProgress(keras.callbacks.Callback):
    """One line per epoch: phase, epoch, losses, validation F1, time, estimated time left."""

    def __init__(self, label: str, epochs: int, stream=None):
        super().__init__()
        self.label, self.epochs = label, epochs
        self.stream = stream or sys.stdout
        self.durations: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self.durations.append(time.monotonic() - self.started)
        left = (self.epochs - epoch - 1) * float(np.mean(self.durations))
        shown = ", ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items()
                          if k in ("loss", "val_loss", "val_f1_macro", "hard_loss", "soft_loss"))
        print(f"{self.label}: epoch {epoch + 1}/{self.epochs}: {shown} "
              f"({self.durations[-1]:.1f} s, ~{left / 60:.1f} min left in phase)",
              file=self.stream, flush=True)


@dataclass
class Phase:
    """One ``fit`` of a training schedule."""

    name: str
    epochs: int
    learning_rate: float
    weight_decay: float
    configure: Callable[[], None]  # sets trainable layers; called before compiling
    fit_model: keras.Model  # the model fit() runs on (the student, teacher or a Distiller)
    loss: object | None  # Keras loss for plain models; None for a Distiller (its own loss)
    early_stopping_patience: int | None = None
    early_stopping_monitor: str = "val_loss"  # or "val_f1_macro": the epoch kept is the best by it
    reduce_lr_patience: int | None = None
    steps_per_epoch: int | None = None  # for an endless training dataset (cycled passes)
    cosine_warmup_epochs: int | None = None  # set: cosine decay after a linear warm-up, and no
    # plateau reduction; None: the learning rate stays, or halves on plateaus
    callbacks: tuple = ()  # the recipe's own, run after each epoch's validation
    model: keras.Model | None = None  # set: the part of the plan's model this phase trains on
    # inputs of its own (the head on cached features): what it validates and checkpoints
    val_inputs: tf.data.Dataset | None = None  # that part's validation inputs
    ema_decay: float = 0.0  # > 0: validation, early stopping and the weights kept see an
    # exponential moving average of the weights (weight_average.py); 0: the raw weights
    lr_layer_decay: float = 1.0  # < 1: each backbone block below the top one trains at this
    # times the rate of the block above it (layerwise.py)
    summary_facts: Callable[[], dict] | None = None  # what the fit model learnt besides its
    # weights (a Distiller's fallback), kept in the summary: a finished phase reused by a later
    # run hands it back


def cosine_learning_rate(epoch: int, epochs: int, base: float, warmup_epochs: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based) of ``epochs``: a linear rise over
    ``warmup_epochs`` (base / (w + 1), 2 base / (w + 1), ...), then half a cosine from ``base``
    towards 0 over the epochs left (never 0 itself: the last epoch still learns)."""
    if epoch < warmup_epochs:
        return base * (epoch + 1) / (warmup_epochs + 1)
    decaying = max(1, epochs - warmup_epochs)
    return base * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / decaying))


def run_phase(phase: Phase, saved_model: keras.Model, train: tf.data.Dataset,
              validation: tf.data.Dataset, val_inputs: tf.data.Dataset, val_targets: np.ndarray,
              state: ResumeState, live, stage: str) -> dict:
    """Run (or skip, or resume) one phase; returns its summary.

    ``saved_model`` is what the phase's weights are kept as (the model being trained, not the
    Distiller wrapping it).
    """
    done = state.finished(phase.name)
    if done is not None:
        state.restore(phase.name, saved_model)
        print(f"{stage}: phase {phase.name} already finished in an earlier run, reusing it")
        if "val_f1_macro" not in done:  # finished by an earlier release
            done["val_f1_macro"] = _val_f1_macro(saved_model, val_inputs, val_targets)
        return done
    if phase.epochs == 0:  # the same keys as a phase that ran: the report reads them all
        summary = {"epochs_run": 0, "learning_rate": phase.learning_rate, "stopped_early": False,
                   "best_val_loss": None,
                   "val_f1_macro": _val_f1_macro(saved_model, val_inputs, val_targets),
                   "wall_time_s": 0.0, **(phase.summary_facts() if phase.summary_facts else {})}
        state.finish(phase.name, saved_model, summary)
        return summary
    started = time.monotonic()
    phase.configure()
    if phase.lr_layer_decay < 1.0:
        optimizer = LayerwiseAdamW(layerwise_multipliers(saved_model, phase.lr_layer_decay),
                                   learning_rate=phase.learning_rate,
                                   weight_decay=phase.weight_decay)
    else:
        optimizer = keras.optimizers.AdamW(learning_rate=phase.learning_rate,
                                           weight_decay=phase.weight_decay)
    phase.fit_model.compile(optimizer=optimizer, loss=phase.loss)
    if not phase.fit_model.built:  # BackupAndRestore warns on an unbuilt model, restores lazily
        phase.fit_model(next(iter(validation))[0], training=False)
    average = (WeightAverage(saved_model, phase.ema_decay,
                             *state.weight_average_files(phase.name))
               if phase.ema_decay > 0 else None)
    callbacks: list = [*([average.swap_in] if average else []),
                       Validation(phase, saved_model, validation, val_targets),
                       *phase.callbacks]
    early = None
    if phase.early_stopping_patience is not None:
        early = keras.callbacks.EarlyStopping(
            monitor=phase.early_stopping_monitor,
            mode="min" if phase.early_stopping_monitor.endswith("loss") else "max",
            patience=phase.early_stopping_patience, restore_best_weights=True)
        callbacks.append(early)
    if phase.cosine_warmup_epochs is not None:
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch, _: cosine_learning_rate(epoch, phase.epochs, phase.learning_rate,
                                                  phase.cosine_warmup_epochs)))
    elif phase.reduce_lr_patience is not None:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                           patience=phase.reduce_lr_patience))
    if live is not None:
        from dvclive.keras import DVCLiveCallback

        callbacks.append(DVCLiveCallback(live=live))
    callbacks.append(EpochProgress(f"{stage} {phase.name}", phase.epochs))
    if average is not None:  # the raw weights back before they are checkpointed
        callbacks.append(average.swap_out)
    callbacks.append(keras.callbacks.BackupAndRestore(str(state.backup_dir(phase.name))))
    # Under multi_worker, each worker takes its share of every global batch from the same
    # seeded stream (rather than its own shard files): the same training as on one machine.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train = train.with_options(options)  # validation is the Validation callback's, per worker
    history = phase.fit_model.fit(train, epochs=phase.epochs,
                                  steps_per_epoch=phase.steps_per_epoch, callbacks=callbacks,
                                  verbose=0)
    val_losses = history.history.get("val_loss", [])
    # the weights the phase ends with are the last epoch's, or the best epoch's, which early
    # stopping restores at the end; each epoch's logged macro-F1 was measured on its weights
    kept_epoch = history.epoch[-1] if history.epoch else None
    if early is not None:
        kept_epoch = early.best_epoch if early.best_weights is not None else None
    kept_f1 = (history.history["val_f1_macro"][history.epoch.index(kept_epoch)]
               if kept_epoch in history.epoch else None)
    summary = {
        "epochs_run": (history.epoch[-1] + 1) if history.epoch else phase.epochs,
        "learning_rate": phase.learning_rate,  # the starting value, as params.yaml gave it
        "stopped_early": bool(early is not None and early.stopped_epoch > 0),
        "best_val_loss": float(min(val_losses)) if val_losses else None,
        "val_f1_macro": (float(kept_f1) if kept_f1 is not None
                         else _val_f1_macro(saved_model, val_inputs, val_targets)),
        "wall_time_s": round(time.monotonic() - started, 1),
        **(phase.summary_facts() if phase.summary_facts else {}),
    }
    state.finish(phase.name, saved_model, summary)
    if average is not None:
        average.forget()
    return summary
