"""The orbital field matrix (Pham et al., 2017) of a structure, computed on the cell instead of a 27× supercell.

matminer's :class:`~matminer.featurizers.structure.OrbitalFieldMatrix` multiplies every structure by 3 × 3 × 3
before finding its symmetry-distinct sites and their Voronoi neighbours. The supercell exists only because the
per-neighbour distance is taken as a *minimum-image* distance (``site.distance``), which in a small cell can
pick a closer image than the neighbour Voronoi found (or zero, for a site's own image). It costs 27× the atoms
in the symmetry search and in the neighbour search, a cost that grows quickly with the size of the cell.

:class:`CellOrbitalFieldMatrix` keeps matminer's definition and its per-site arithmetic (``get_single_ofm``,
``get_mean_ofm``) and changes only the inputs: symmetry-distinct sites and Voronoi neighbours of the cell
itself (periodic images included by the neighbour search), and the centre given as a plain, non-periodic site,
so that each neighbour's distance is the distance to the image Voronoi found. The supercell's symmetry classes
are the cell's classes repeated 27 times and every image of a site has the same environment, so the mean over
sites is the same quantity (tested against matminer's output, ``tests/test_bench_ofm.py``).
"""

from __future__ import annotations

import numpy as np
from matminer.featurizers.structure import OrbitalFieldMatrix


class CellOrbitalFieldMatrix(OrbitalFieldMatrix):
    """matminer's OrbitalFieldMatrix (mean over sites, ``flatten`` as there) without the 3 × 3 × 3 supercell."""

    def featurize(self, s):
        """Mean orbital field matrix of the structure ``s`` (flattened if ``self.flatten``).

        Args:
            s: a pymatgen ``Structure``.

        Returns:
            ``size × size`` values (a list holding the matrix if not ``flatten``).
        """
        from pymatgen.analysis.local_env import VoronoiNN
        from pymatgen.core import Site
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        classes = SpacegroupAnalyzer(s).get_symmetrized_structure().equivalent_indices
        voronoi = VoronoiNN(allow_pathological=True)
        ofms, counts = [], []
        for members in classes:
            centre = s[members[0]]
            # a plain Site measures distances in Cartesian space: to the very image the neighbour search found
            plain = Site(centre.species, centre.coords)
            ofms.append(self.get_single_ofm(plain, voronoi.get_nn_info(s, members[0])))
            counts.append(len(members))
        mean = np.asarray(self.get_mean_ofm(ofms, counts))
        return mean.flatten() if self.flatten else [mean]
