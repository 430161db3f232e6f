"""Datasets of the notes: MNIST (IDX files, verified download cache), the Batman logo, the Marvel
heroes table and the costume-price points."""

from jaxmath.datasets.batman import batman_bounds as batman_bounds
from jaxmath.datasets.batman import batman_inside as batman_inside
from jaxmath.datasets.batman import batman_logo as batman_logo
from jaxmath.datasets.batman import logo_grid as logo_grid
from jaxmath.datasets.batman import logo_image as logo_image
from jaxmath.datasets.costumes import costume_prices as costume_prices
from jaxmath.datasets.marvel import MarvelHeroes as MarvelHeroes
from jaxmath.datasets.marvel import marvel_heroes as marvel_heroes
from jaxmath.datasets.mnist import DownloadError as DownloadError
from jaxmath.datasets.mnist import load_mnist as load_mnist
from jaxmath.datasets.mnist import parse_idx as parse_idx
from jaxmath.datasets.splits import overlap as overlap
from jaxmath.datasets.splits import parse_split as parse_split
from jaxmath.datasets.splits import split_slice as split_slice
