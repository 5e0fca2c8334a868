"""Preparation of delivered products for fusion: one HS product and two MS products onto one grid.

``dcstsf prepare HS_PRODUCT MS1_PRODUCT MS2_PRODUCT -o DIR`` (and ``dcstsf fuse`` given products) runs
:func:`prepare_products`: read the products (:mod:`dcstsf.products`), cut MS(t1)'s grid to the overlap of
the three footprints and snap the HS grid onto it at the integer ratio (:mod:`~dcstsf.preparation.grid`,
:mod:`~dcstsf.preparation.footprint`), resample what does not lie on it (:mod:`~dcstsf.preparation.resample`),
co-register the HS to the MS (:mod:`dcstsf.coregistration`), and record masks, footprint and
displacement in the arrays' attributes (:mod:`~dcstsf.preparation.masks`). The result,
:class:`PreparedInputs`, is lazy; :func:`write_prepared` writes it as three GeoTIFFs.

Example::

    import dcstsf
    from dcstsf.preparation import PrepareOptions, prepare_products, write_prepared

    p = prepare_products("ENMAP01-...-L2A/", "S2A_MSIL2A_....SAFE", "S2B_MSIL2A_....SAFE")
    print("\\n".join(p.describe()))
    fused = dcstsf.fuse(p.hs_t1, p.ms_t1, p.ms_t2)          # or:
    write_prepared(p, "prepared/")                          # then dcstsf fuse prepared/*.tif
"""

from dcstsf.preparation.footprint import Footprint, PartialFootprintWarning
from dcstsf.preparation.grid import PreparedGrid
from dcstsf.preparation.options import PrepareOptions
from dcstsf.preparation.prepare import prepare_inputs, prepare_products
from dcstsf.preparation.prepared import INPUT_NAMES, PreparedInputs
from dcstsf.preparation.resample import HS_DOWNSAMPLING, HS_UPSAMPLING, MS_RESAMPLING
from dcstsf.preparation.sources import open_input
from dcstsf.preparation.write import PREPARED_FILES, write_prepared

__all__ = [
    "HS_DOWNSAMPLING",
    "HS_UPSAMPLING",
    "INPUT_NAMES",
    "MS_RESAMPLING",
    "PREPARED_FILES",
    "Footprint",
    "PartialFootprintWarning",
    "PrepareOptions",
    "PreparedGrid",
    "PreparedInputs",
    "open_input",
    "prepare_inputs",
    "prepare_products",
    "write_prepared",
]
