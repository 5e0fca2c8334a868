"""Readers of delivered satellite products: Sentinel-2 L2A, EnMAP L2A, PRISMA L2D, ZY-1 02D AHSI.

Each reader turns a product as downloaded (a folder, its metadata file, an HDF5 file or a STAC item)
into the dcstsf raster convention of :mod:`dcstsf.io`: a float32 reflectance DataArray ``(band, y, x)``,
NaN for nodata and masked pixels, CRS and transform on ``.rio``, band coordinates ``wavelength``/``fwhm``
and the attributes ``sensor``, ``product_path`` and ``masked_fraction``.
"""
