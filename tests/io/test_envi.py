"""ENVI images: header parsing, every interleave and byte order, truncated data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dcstsf.errors import DcstsfInputError
from dcstsf.io import open_raster, parse_envi_header, read_envi


def _write_envi(tmp_path: Path, interleave: str, *, byte_order: int = 0) -> tuple[Path, np.ndarray]:
    nb, nl, ns = 3, 4, 5
    cube = (np.arange(nb * nl * ns, dtype=np.int16).reshape(nb, nl, ns) * 10 + 100).astype(np.int16)
    layout = {"bsq": cube, "bil": cube.transpose(1, 0, 2), "bip": cube.transpose(1, 2, 0)}[interleave]
    dtype = np.dtype("<i2" if byte_order == 0 else ">i2")
    img = tmp_path / f"cube_{interleave}.img"
    img.write_bytes(b"\0" * 16 + np.ascontiguousarray(layout).astype(dtype).tobytes())
    hdr = tmp_path / f"cube_{interleave}.hdr"
    hdr.write_text(
        "ENVI\ndescription = {\n  test cube, made in a test}\n"
        f"samples = {ns}\nlines   = {nl}\nbands   = {nb}\nheader offset = 16\nfile type = ENVI Standard\n"
        f"data type = 2\ninterleave = {interleave}\nbyte order = {byte_order}\n"
        "wavelength units = Micrometers\nreflectance scale factor = 1000.0\n"
        "wavelength = {\n 0.45, 0.55,\n 0.65}\nfwhm = {0.01, 0.01, 0.01}\nbbl = {1, 1, 0}\n"
        "band names = {Blue, Green, Red}\n"
    )
    return hdr, cube


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_read_envi(tmp_path: Path, interleave: str) -> None:
    hdr, cube = _write_envi(tmp_path, interleave, byte_order=1 if interleave == "bip" else 0)
    da = read_envi(hdr)
    np.testing.assert_allclose(da.values, cube / 1000.0, rtol=1e-6)
    assert list(da["band"].values) == ["Blue", "Green", "Red"]
    np.testing.assert_allclose(da["wavelength"].values, [450, 550, 650])
    np.testing.assert_allclose(da["fwhm"].values, [10, 10, 10])
    assert list(da["bbl"].values) == [1, 1, 0]
    assert da.rio.crs is None and da.sizes == {"band": 3, "y": 4, "x": 5}
    np.testing.assert_allclose(read_envi(hdr.with_suffix(".img")).values, da.values)
    np.testing.assert_allclose(open_raster(hdr).values, da.values)


def test_parse_envi_header(tmp_path: Path) -> None:
    hdr, _ = _write_envi(tmp_path, "bsq")
    h = parse_envi_header(hdr)
    assert h["samples"] == 5 and h["interleave"] == "bsq" and h["reflectance scale factor"] == 1000.0
    assert h["wavelength"] == [0.45, 0.55, 0.65] and h["bbl"] == [1, 1, 0]
    assert h["band names"] == ["Blue", "Green", "Red"] and h["description"] == "test cube, made in a test"
    bad = tmp_path / "bad.hdr"
    bad.write_text("not a header\n")
    with pytest.raises(DcstsfInputError, match="ENVI"):
        parse_envi_header(bad)


def test_read_envi_truncated(tmp_path: Path) -> None:
    hdr, _ = _write_envi(tmp_path, "bil")
    img = hdr.with_suffix(".img")
    img.write_bytes(img.read_bytes()[:50])
    with pytest.raises(DcstsfInputError, match="truncated") as exc:
        read_envi(hdr)
    assert str(img) in str(exc.value)
