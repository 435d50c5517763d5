"""The layer-set notation: which encoder layers a descriptor concatenates.

The paper's notation is a string of layer digits in increasing order: ``"0"``, ``"01"``, ``"012"``
(h0, h1 and h2 concatenated). Layers from 10 on have two digits, so a string holding one is written with
commas: ``"0,1,10"``. A tuple of ints (``(0, 1, 2)``) or one int (``2``) works too. A digit string that is not
increasing (``"10"``, ``"21"``) is refused rather than guessed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def parse_layers(layers: str | int | Sequence[int], n_layers: int) -> tuple[int, ...]:
    """Normalise a layer set: ``"012"`` (the paper's notation), ``"0,1,10"``, ``2`` or ``(0, 1, 2)``.

    Raises:
        ValueError: empty, repeated, out-of-range or ambiguous layers (valid: 0..n_layers).
    """
    if isinstance(layers, str):
        text = layers.replace(" ", "")
        if "," in text:
            parts = text.split(",")
            if not all(p.isdigit() for p in parts):
                raise ValueError(f"layers={layers!r}: use digits such as '01', or comma-separated layers such as "
                                 "'0,1,10'")
            parsed = tuple(int(p) for p in parts)
        else:
            if not text.isdigit():
                raise ValueError(f"layers={layers!r}: use digits such as '01' or a tuple of ints")
            parsed = tuple(int(c) for c in text)
            if any(b <= a for a, b in itertools.pairwise(parsed)):
                raise ValueError(f"layers={layers!r} is ambiguous: write a layer set's digits in increasing order "
                                 "('01', '012'); layers from 10 on are written with commas ('0,10')")
    elif isinstance(layers, (bool, np.bool_)):
        raise ValueError(f"layers={layers!r}: use digits such as '01' or a tuple of ints")
    elif isinstance(layers, (int, np.integer)):
        parsed = (int(layers),)
    else:
        try:
            parsed = tuple(int(v) for v in layers)
        except (TypeError, ValueError):
            raise ValueError(f"layers={layers!r}: use digits such as '01' or a tuple of ints") from None
    if not parsed or len(set(parsed)) != len(parsed):
        raise ValueError(f"layers={layers!r}: need at least one layer and no repeats")
    bad = [v for v in parsed if not 0 <= v <= n_layers]
    if bad:
        raise ValueError(f"layers={layers!r}: layer(s) {bad} out of range; this model has layers 0..{n_layers}")
    return parsed
