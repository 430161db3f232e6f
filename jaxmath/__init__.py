"""jaxmath: the bare math behind machine-learning libraries, as pure JAX functions.

Every formula of the notes (activations, losses, gradient descent and backprop,
optimizers, regression, the MNIST network, Hebbian and competitive learning,
Kohonen maps, k-means) written as pure functions over arrays and pytrees that
jit and vmap, and run unchanged on CPU, GPU and TPU.

The bare math:   activations, losses, regularizers, distances, stats, conv
Families:        optim, models, training, unsupervised, datasets, bench, devices
Reliability:     checkpoint (atomic saves, exact resume)

``import jaxmath`` loads jax and numpy and nothing heavier: ``jaxmath.plot`` (matplotlib, the ``plot`` extra)
and the command line (``jaxmath.cli``) are imported only by whoever uses them, and tqdm only when a progress
bar is shown. Check with ``python -X importtime -c "import jaxmath"``.
"""

__version__ = "0.2.0"

from jaxmath import activations as activations
from jaxmath import losses as losses
from jaxmath import regularizers as regularizers
from jaxmath import distances as distances
from jaxmath import stats as stats
from jaxmath import conv as conv
from jaxmath import optim as optim
from jaxmath import models as models
from jaxmath import training as training
from jaxmath import unsupervised as unsupervised
from jaxmath import datasets as datasets
from jaxmath import bench as bench
from jaxmath import devices as devices
from jaxmath import checkpoint as checkpoint

__all__ = [
    "activations",
    "losses",
    "regularizers",
    "distances",
    "stats",
    "conv",
    "optim",
    "models",
    "training",
    "unsupervised",
    "datasets",
    "bench",
    "devices",
    "checkpoint",
]
