"""jaxmath: the bare math behind machine-learning libraries, as pure JAX functions.

Every formula of the notes (activations, losses, gradient descent and backprop,
optimizers, regression, the MNIST network, Hebbian and competitive learning,
Kohonen maps, k-means) written as pure functions over arrays and pytrees that
jit and vmap, and run unchanged on CPU, GPU and TPU.

The bare math:   activations, losses, regularizers, distances, stats, conv
Families:        optim, models, training, unsupervised, datasets, bench, devices
Fooling networks: adversarial (attacks, fooling images, the patch, adversarial training), dream
Reliability:     checkpoint (atomic saves, exact resume)

``import jaxmath`` loads jax and numpy and nothing heavier: ``jaxmath.plot`` (matplotlib, the ``plot`` extra)
and the command line (``jaxmath.cli``) are imported only by whoever uses them, and tqdm only when a progress
bar is shown. Check with ``python -X importtime -c "import jaxmath"``.
"""

__version__ = "0.3.0"

import os as _os
import signal as _signal
import sys as _sys


def _leave_interrupted(signum, frame):
    # Ctrl-C while jax is still loading would surface as a traceback, or crash jaxlib at exit: end at once.
    try:
        _sys.stdout.flush()
        _sys.stderr.write("jaxmath: interrupted\n")
        _sys.stderr.flush()
    finally:
        _os._exit(130)


# Only the command line (the `jaxmath` script or `python -m jaxmath`) ends the process on an interrupt
# during these imports; a program that imports jaxmath keeps its own handlers, and so does the command
# line once the imports are done (jaxmath.cli installs its own).
_previous_handlers = {}
if _sys.argv and (_os.path.basename(_sys.argv[0]) == "jaxmath" or _sys.argv[0] == "-m"):
    try:
        for _signum in (_signal.SIGINT, _signal.SIGTERM):
            if _signal.getsignal(_signum) is not _signal.SIG_IGN:  # a background job keeps ignoring Ctrl-C
                _previous_handlers[_signum] = _signal.signal(_signum, _leave_interrupted)
    except ValueError:  # not the main thread
        _previous_handlers = {}

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
from jaxmath import adversarial as adversarial
from jaxmath import dream as dream

for _signum, _handler in _previous_handlers.items():
    _signal.signal(_signum, _handler)
del _previous_handlers

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
    "adversarial",
    "dream",
]
