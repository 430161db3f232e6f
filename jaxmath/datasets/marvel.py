"""Seed 000's "Marvel database to the rescue" table: 16 heroes rated on 6 attributes (1-7)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_ATTRIBUTES = ("Intelligence", "Strength", "Speed", "Durability", "Energy projection", "Fighting skills")

# Copied row by row from the notes (the slide spells "Black Panter").
_TABLE = (
    ("Iron Man", (6, 6, 5, 6, 6, 4)),
    ("Spiderman", (4, 4, 3, 3, 1, 4)),
    ("Black Panther", (5, 3, 2, 3, 3, 5)),
    ("Wolverine", (2, 4, 2, 4, 1, 7)),
    ("Thor", (2, 7, 7, 6, 6, 4)),
    ("Dr Strange", (4, 2, 7, 2, 6, 6)),
    ("Hulk", (2, 7, 3, 7, 5, 4)),
    ("Cpt. America", (3, 3, 2, 3, 1, 6)),
    ("Mr Fantastic", (6, 2, 2, 5, 1, 3)),
    ("Human Torch", (2, 2, 5, 2, 5, 3)),
    ("Invisible Woman", (3, 2, 3, 6, 5, 3)),
    ("The Thing", (3, 6, 2, 6, 1, 5)),
    ("Luke Cage", (3, 4, 2, 5, 1, 4)),
    ("She Hulk", (3, 7, 3, 6, 1, 4)),
    ("Ms Marvel", (2, 6, 2, 6, 1, 4)),
    ("Daredevil", (3, 3, 2, 2, 4, 5)),
)


class MarvelHeroes(NamedTuple):
    """The hero table: ``values[i, j]`` is hero ``names[i]``'s rating in ``attributes[j]``.

    Attributes:
      names: 16 hero names, in the notes' order.
      attributes: the 6 attribute names (Intelligence, Strength, Speed,
        Durability, Energy projection, Fighting skills).
      values: (16, 6) float32 ratings on the 1-7 scale.
    """

    names: tuple[str, ...]
    attributes: tuple[str, ...]
    values: np.ndarray


def marvel_heroes() -> MarvelHeroes:
    """Seed 000's 16 heroes × 6 attributes table (the input of the Hebbian / competitive-learning demos).

    Returns:
      :class:`MarvelHeroes` with ``values`` a fresh float32 (16, 6) NumPy array.
    """
    names = tuple(name for name, _ in _TABLE)
    values = np.array([row for _, row in _TABLE], dtype=np.float32)
    return MarvelHeroes(names=names, attributes=_ATTRIBUTES, values=values)
