"""Readers of delivered satellite products: Sentinel-2 L2A, EnMAP L2A, PRISMA L2D, ZY-1 02D AHSI.

Each reader turns a product as downloaded (a folder, its metadata file, an HDF5 file or a STAC item)
into the dcstsf raster convention of :mod:`dcstsf.io`: a float32 reflectance DataArray ``(band, y, x)``,
NaN for nodata and masked pixels, CRS and transform on ``.rio``, band coordinates ``wavelength``/``fwhm``
and the attributes ``sensor``, ``product_path`` and ``masked_fraction``.

:func:`open_product` recognises a product by its layout and calls its reader; :func:`is_product` tells
callers whether a path is one.
"""

from dcstsf.products.ahsi import AhsiOptions, read_ahsi
from dcstsf.products.enmap import EnmapOptions, read_enmap_l2a
from dcstsf.products.open import ACCEPTED_FORMS, PRODUCT_KINDS, ProductOptions, is_product, open_product, product_kind
from dcstsf.products.prisma import PrismaOptions, read_prisma_l2d
from dcstsf.products.scl import DEFAULT_SCL, SclOptions
from dcstsf.products.sentinel2 import DEFAULT_BANDS, read_sentinel2_l2a
from dcstsf.products.stac import read_sentinel2_stac

__all__ = [
    "ACCEPTED_FORMS",
    "DEFAULT_BANDS",
    "DEFAULT_SCL",
    "PRODUCT_KINDS",
    "AhsiOptions",
    "EnmapOptions",
    "PrismaOptions",
    "ProductOptions",
    "SclOptions",
    "is_product",
    "open_product",
    "product_kind",
    "read_ahsi",
    "read_enmap_l2a",
    "read_prisma_l2d",
    "read_sentinel2_l2a",
    "read_sentinel2_stac",
]
