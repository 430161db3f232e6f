"""Unsupervised learning as pure, jitted functions: Hebbian rules, winner takes all / most, Kohonen
self-organizing maps and k-means.

Each method lives in its own module and follows one shape (docs/conventions.md):
``params = module.init(key, ...)``, ``params, info = module.fit(x, params=params, ...)`` (``info`` a NamedTuple
with ``converged``, ``num_steps`` and the loss history where there is one), ``module.apply(params, x)`` for the
forward pass and ``module.predict(params, x)`` for the winner / cluster index.

Nothing is lost: every fit stops before the first step that would make its weights non-finite (or push their
squared norms out of the dtype's range), returns the last finite weights, sets ``info.nonfinite`` and
``info.first_nonfinite_step`` and warns (``RuntimeWarning``) naming the step. k-means also warns when it finds
fewer distinct clusters than asked (duplicate rows). Use the modules by name:

    from jaxmath.unsupervised import competitive, hebbian, kmeans, som
"""

from jaxmath.unsupervised import competitive as competitive
from jaxmath.unsupervised import hebbian as hebbian
from jaxmath.unsupervised import kmeans as kmeans
from jaxmath.unsupervised import neighbourhoods as neighbourhoods
from jaxmath.unsupervised import som as som
from jaxmath.unsupervised import som_grid as som_grid
from jaxmath.unsupervised.competitive import CompetitiveInfo as CompetitiveInfo
from jaxmath.unsupervised.hebbian import HebbianInfo as HebbianInfo
from jaxmath.unsupervised.kmeans import KMeansInfo as KMeansInfo
from jaxmath.unsupervised.som import SOMInfo as SOMInfo

__all__ = [
    "competitive",
    "hebbian",
    "kmeans",
    "neighbourhoods",
    "som",
    "som_grid",
    "CompetitiveInfo",
    "HebbianInfo",
    "KMeansInfo",
    "SOMInfo",
]
