"""Unsupervised learning as pure, jitted state transforms: Hebbian rules, winner takes all / most,
Kohonen self-organizing maps and k-means.

Each method lives in its own module (``hebbian``, ``competitive``, ``som`` with ``som_grid`` and
``neighbourhoods``, ``kmeans``); the names below are re-exported for convenience. The modules' ``init``
and ``train`` functions are exported with the method's prefix (``som_init``, ``som_train``, ...).
"""

from jaxmath.unsupervised import competitive as competitive
from jaxmath.unsupervised import hebbian as hebbian
from jaxmath.unsupervised import kmeans as kmeans
from jaxmath.unsupervised import neighbourhoods as neighbourhoods
from jaxmath.unsupervised import som as som
from jaxmath.unsupervised import som_grid as som_grid

# Hebbian learning
from jaxmath.unsupervised.hebbian import HebbianState as HebbianState
from jaxmath.unsupervised.hebbian import hebb_output as hebb_output
from jaxmath.unsupervised.hebbian import hebb_rule as hebb_rule
from jaxmath.unsupervised.hebbian import hebb_train as hebb_train
from jaxmath.unsupervised.hebbian import init as hebbian_init
from jaxmath.unsupervised.hebbian import oja_rule as oja_rule
from jaxmath.unsupervised.hebbian import oja_train as oja_train
from jaxmath.unsupervised.hebbian import sanger_rule as sanger_rule
from jaxmath.unsupervised.hebbian import sanger_train as sanger_train
from jaxmath.unsupervised.hebbian import with_bias_input as with_bias_input

# Competitive learning
from jaxmath.unsupervised.competitive import CompetitiveState as CompetitiveState
from jaxmath.unsupervised.competitive import init as competitive_init
from jaxmath.unsupervised.competitive import winner as winner
from jaxmath.unsupervised.competitive import wta_step as wta_step
from jaxmath.unsupervised.competitive import wta_train as wta_train
from jaxmath.unsupervised.competitive import wta_train_batch as wta_train_batch
from jaxmath.unsupervised.competitive import wtm_step as wtm_step
from jaxmath.unsupervised.competitive import wtm_train as wtm_train
from jaxmath.unsupervised.competitive import wtm_train_batch as wtm_train_batch

# Self-organizing maps
from jaxmath.unsupervised.som import SOMState as SOMState
from jaxmath.unsupervised.som import best_matching_units as best_matching_units
from jaxmath.unsupervised.som import init as som_init
from jaxmath.unsupervised.som import quantization_error as quantization_error
from jaxmath.unsupervised.som import topographic_error as topographic_error
from jaxmath.unsupervised.som import train as som_train
from jaxmath.unsupervised.som import train_batch as som_train_batch
from jaxmath.unsupervised.som import u_matrix as u_matrix
from jaxmath.unsupervised.som import winner_map as winner_map

# k-means
from jaxmath.unsupervised.kmeans import KMeansState as KMeansState
from jaxmath.unsupervised.kmeans import inertia as kmeans_inertia
from jaxmath.unsupervised.kmeans import fit as kmeans_fit
from jaxmath.unsupervised.kmeans import kmeans_plus_plus as kmeans_plus_plus
from jaxmath.unsupervised.kmeans import lloyd_step as lloyd_step
from jaxmath.unsupervised.kmeans import predict as kmeans_predict
