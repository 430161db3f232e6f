"""The functional training engine: a ``TrainState`` pytree, a pure train step, a compiled epoch, ``fit``.

Typical use (the 784-16-16-10 sigmoid network of the notes)::

    import jax
    from jaxmath import optim, training
    from jaxmath.datasets import load_mnist
    from jaxmath.models import mlp

    x, labels = load_mnist("train[:8000]")
    model = mlp.make((784, 16, 16, 10), activation="sigmoid", output="sigmoid")
    loss_fn = training.make_classifier_loss(model, num_classes=10, loss="sum_of_squares")
    step = training.make_train_step(loss_fn, optim.sgd(learning_rate=1.0))   # the optimizer, given once
    state = step.init(model.init(jax.random.key(0)), key=jax.random.key(1))
    state, info = training.fit(state, x, labels, train_step=step, num_epochs=20, batch_size=16,
                               validation_data=load_mnist("train[-5000:]"), patience=3)

Or bring your own loop: ``step(state, batch) -> (state, metrics)`` is jitted and pure, and
``training.run_epoch(state, x, labels, train_step=step, batch_size=16)`` scans it over a shuffled epoch.
"""

from jaxmath.training.ensemble import evaluate_ensemble as evaluate_ensemble
from jaxmath.training.ensemble import fit_ensemble as fit_ensemble
from jaxmath.training.ensemble import init_ensemble as init_ensemble
from jaxmath.training.ensemble import run_ensemble_epoch as run_ensemble_epoch
from jaxmath.training.epoch import evaluate as evaluate
from jaxmath.training.epoch import run_epoch as run_epoch
from jaxmath.training.fit import FitInfo as FitInfo
from jaxmath.training.fit import fit as fit
from jaxmath.training.objectives import CLASSIFIER_LOSSES as CLASSIFIER_LOSSES
from jaxmath.training.objectives import make_classifier_loss as make_classifier_loss
from jaxmath.training.objectives import prepare_images as prepare_images
from jaxmath.training.state import TrainState as TrainState
from jaxmath.training.step import TrainStep as TrainStep
from jaxmath.training.step import make_train_step as make_train_step

__all__ = [
    "TrainState",
    "TrainStep",
    "make_train_step",
    "make_classifier_loss",
    "CLASSIFIER_LOSSES",
    "prepare_images",
    "run_epoch",
    "evaluate",
    "fit",
    "FitInfo",
    "init_ensemble",
    "run_ensemble_epoch",
    "evaluate_ensemble",
    "fit_ensemble",
]
