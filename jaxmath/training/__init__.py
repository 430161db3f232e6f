"""The functional training engine: a ``TrainState`` pytree, a pure train step, a compiled epoch, ``fit``.

Typical use (784-16-16-10 sigmoid network of the notes)::

    from functools import partial
    import jax
    from jaxmath import optim, training
    from jaxmath.models import mlp

    loss_fn = training.make_classifier_loss(
        partial(mlp.apply, activation="sigmoid", output="sigmoid"), num_classes=10, loss="sum_of_squares")
    optimizer = optim.sgd(learning_rate=1.0)
    state = training.TrainState.create(mlp.init(jax.random.key(0), (784, 16, 16, 10)), optimizer,
                                       key=jax.random.key(1))
    result = training.fit(state, images, labels, loss_fn=loss_fn, optimizer=optimizer,
                          epochs=30, batch_size=32, validation_split=0.1)

Or bring your own loop: ``step = training.make_train_step(loss_fn, optimizer)`` is a jitted pure
``step(state, batch) -> (state, metrics)``, and ``training.run_epoch`` scans it over a shuffled epoch.
"""

from jaxmath.training.ensemble import evaluate_ensemble as evaluate_ensemble
from jaxmath.training.ensemble import fit_ensemble as fit_ensemble
from jaxmath.training.ensemble import init_ensemble as init_ensemble
from jaxmath.training.ensemble import run_ensemble_epoch as run_ensemble_epoch
from jaxmath.training.epoch import check_dataset as check_dataset
from jaxmath.training.epoch import epoch_core as epoch_core
from jaxmath.training.epoch import evaluate as evaluate
from jaxmath.training.epoch import run_epoch as run_epoch
from jaxmath.training.fit import FitResult as FitResult
from jaxmath.training.fit import fit as fit
from jaxmath.training.objectives import make_classifier_loss as make_classifier_loss
from jaxmath.training.objectives import prepare_images as prepare_images
from jaxmath.training.state import TrainState as TrainState
from jaxmath.training.step import make_train_step as make_train_step

__all__ = [
    "TrainState",
    "make_train_step",
    "make_classifier_loss",
    "prepare_images",
    "run_epoch",
    "epoch_core",
    "evaluate",
    "check_dataset",
    "fit",
    "FitResult",
    "init_ensemble",
    "run_ensemble_epoch",
    "evaluate_ensemble",
    "fit_ensemble",
]
