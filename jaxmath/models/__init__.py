"""Models as pure functions over parameter pytrees: ``init``, ``predict``/``apply``, ``loss``, ``fit``."""

# The MNIST network (issue 5).
from jaxmath.models import mlp as mlp
