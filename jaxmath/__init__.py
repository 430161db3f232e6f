"""jaxmath: the bare math behind machine-learning libraries, as pure JAX functions.

Every formula of the notes (activations, losses, gradient descent and backprop,
optimizers, regression, the MNIST network, Hebbian and competitive learning,
Kohonen maps, k-means) written as pure functions over arrays and pytrees that
jit and vmap, and run unchanged on CPU, GPU and TPU.
"""

__version__ = "0.1.0"

from jaxmath import _validation as _validation
