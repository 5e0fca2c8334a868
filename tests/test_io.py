"""Tests for dcstsf.io: reading, decoding, writing (GeoTIFF/COG, Zarr, NetCDF) and ENVI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin

from dcstsf.errors import DcstsfInputError
from dcstsf.io import (
    RASTER_SUFFIXES,
    cog_codec_options,
    gtiff_codec_options,
    open_raster,
    parse_envi_header,
    read_envi,
    write_raster,
)

CRS = "EPSG:32633"
TRANSFORM = from_origin(366975.0, 5808045.0, 30.0, 30.0)
WAVELENGTHS = np.array([450.0, 550.0, 650.0, 850.0])


def make_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = CRS,
    scales: list[float] | None = None,
    offsets: list[float] | None = None,
    nodata: float | None = None,
    band_tags: list[dict[str, Any]] | None = None,
    tags: dict[str, Any] | None = None,
    descriptions: list[str] | None = None,
) -> Path:
    """A small GeoTIFF written directly with rasterio (independent of write_raster)."""
    n, h, w = data.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": n,
        "dtype": data.dtype.name,
        "transform": TRANSFORM,
    }
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if scales is not None:
            dst.scales = scales
        if offsets is not None:
            dst.offsets = offsets
        if tags:
            dst.update_tags(**tags)
        for i, bt in enumerate(band_tags or []):
            dst.update_tags(i + 1, **bt)
        for i, d in enumerate(descriptions or []):
            dst.set_band_description(i + 1, d)
    return path


def reflectance_cube(n: int = 4, h: int = 20, w: int = 24, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    data = rng.uniform(0.0, 0.6, size=(n, h, w)).astype(np.float32)
    data[0, 0, 0] = np.nan
    da = xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": np.array([f"B{i + 2:02d}" for i in range(n)], dtype=object),
            "wavelength": ("band", WAVELENGTHS[:n]),
            "fwhm": ("band", np.full(n, 20.0)),
            "bbl": ("band", np.ones(n, dtype=np.int8)),
            "y": TRANSFORM.f - 30.0 * (np.arange(h) + 0.5),
            "x": TRANSFORM.c + 30.0 * (np.arange(w) + 0.5),
        },
        attrs={"method": "unit-test", "dcstsf_version": "0.1.0"},
    )
    return da.rio.write_crs(CRS).rio.write_transform(TRANSFORM)


def assert_same_raster(a: xr.DataArray, b: xr.DataArray, *, atol: float = 0.0) -> None:
    assert a.dims == ("band", "y", "x") and a.dtype == np.float32
    np.testing.assert_allclose(a.values, b.values, atol=atol, equal_nan=True)
    assert list(a["band"].values) == list(b["band"].values)
    np.testing.assert_allclose(a["wavelength"].values, b["wavelength"].values)
    np.testing.assert_allclose(a["fwhm"].values, b["fwhm"].values)
    assert a.rio.crs == b.rio.crs
    assert a.rio.transform().almost_equals(b.rio.transform())


# ---------------------------------------------------------------------------------------------- reading


def test_int16_with_band_scales_reads_reflectance(tmp_path: Path) -> None:
    dn = np.array([[[100, 2000], [3000, -32768]]] * 2, dtype=np.int16)
    p = make_tif(tmp_path / "a.tif", dn, scales=[2e-4, 2e-4], offsets=[0.0, 0.0], nodata=-32768)
    da = open_raster(p)
    assert da.dtype == np.float32 and da.dims == ("band", "y", "x")
    np.testing.assert_allclose(da.values[0], [[0.02, 0.4], [0.6, np.nan]], rtol=1e-6)
    assert list(da["band"].values) == ["band_1", "band_2"]
    assert da.rio.crs.to_epsg() == 32633
    assert da.rio.transform() == TRANSFORM


def test_explicit_scale_overrides_file(tmp_path: Path) -> None:
    dn = np.full((1, 2, 2), 500, dtype=np.int16)
    p = make_tif(tmp_path / "a.tif", dn, scales=[2e-4])
    np.testing.assert_allclose(open_raster(p, scale=1e-3).values, 0.5)
    np.testing.assert_allclose(open_raster(p, scale=1e-3, offset=-0.1).values, 0.4, rtol=1e-6)


def test_float_with_nodata_and_wavelength_tags(tmp_path: Path) -> None:
    data = np.full((3, 4, 4), 0.25, dtype=np.float32)
    data[1, 2, 2] = -9999.0
    band_tags = [
        {"wavelength": str(w / 1000), "fwhm": "0.01", "wavelength_units": "Micrometers", "bbl": "1"}
        for w in WAVELENGTHS[:3]
    ]
    p = make_tif(tmp_path / "f.tif", data, nodata=-9999.0, band_tags=band_tags, descriptions=["B02", "B03", "B04"])
    da = open_raster(p)
    assert np.isnan(da.values[1, 2, 2]) and np.nanmax(da.values) == pytest.approx(0.25)
    assert list(da["band"].values) == ["B02", "B03", "B04"]
    np.testing.assert_allclose(da["wavelength"].values, WAVELENGTHS[:3])
    np.testing.assert_allclose(da["fwhm"].values, 10.0)
    assert list(da["bbl"].values) == [1, 1, 1]


def test_envi_style_dataset_metadata(tmp_path: Path) -> None:
    dn = np.full((3, 4, 4), 2500, dtype=np.int16)
    tags = {
        "wavelength": "{450.0, 550.0, 650.0}",
        "fwhm": "{10, 10, 10}",
        "bbl": "{1, 0, 1}",
        "reflectance_scale_factor": "5000",
    }
    da = open_raster(make_tif(tmp_path / "e.tif", dn, tags=tags))
    np.testing.assert_allclose(da.values, 0.5)
    np.testing.assert_allclose(da["wavelength"].values, [450, 550, 650])
    assert list(da["bbl"].values) == [1, 0, 1]
    assert "reflectance_scale_factor" not in da.attrs  # applied, so not carried on (no double scaling)


def test_gdal_auto_descriptions_give_names_and_wavelengths(tmp_path: Path) -> None:
    data = np.full((2, 2, 2), 0.1, dtype=np.float32)
    p = make_tif(tmp_path / "d.tif", data, descriptions=["band 1 (418.24 Nanometers)", "band 2 (423.9 Nanometers)"])
    da = open_raster(p)
    assert list(da["band"].values) == ["band_1", "band_2"]
    np.testing.assert_allclose(da["wavelength"].values, [418.24, 423.9])


def test_integer_without_scale_is_an_error(tmp_path: Path) -> None:
    p = make_tif(tmp_path / "int.tif", np.full((2, 3, 3), 1200, dtype=np.uint16))
    with pytest.raises(DcstsfInputError, match="scale=") as exc:
        open_raster(p)
    assert str(p) in str(exc.value) and "--scale" in str(exc.value)
    np.testing.assert_allclose(open_raster(p, scale=1e-4).values, 0.12, rtol=1e-6)


def test_float_that_looks_like_scaled_integers_is_an_error(tmp_path: Path) -> None:
    p = make_tif(tmp_path / "big.tif", np.full((2, 8, 8), 1500.0, dtype=np.float32))
    with pytest.raises(DcstsfInputError, match="scaled integers") as exc:
        open_raster(p)
    assert str(p) in str(exc.value)
    np.testing.assert_allclose(open_raster(p, scale=1e-4).values, 0.15, rtol=1e-6)


def test_float_reflectance_without_scale_is_accepted(tmp_path: Path) -> None:
    data = np.full((2, 8, 8), 0.3, dtype=np.float32)
    data[:, 0, 0] = 1.2  # a few bright pixels must not trip the check
    np.testing.assert_allclose(open_raster(make_tif(tmp_path / "r.tif", data)).values[:, 1:, 1:], 0.3)


def _s2_file(tmp_path: Path, name: str, *, baseline: str | None, add_offset: bool) -> Path:
    dn = np.array([[[0, 1000], [2000, 6000]]] * 2, dtype=np.uint16)
    tags: dict[str, Any] = {"BOA_QUANTIFICATION_VALUE": "10000"}
    if baseline is not None:
        tags["PROCESSING_BASELINE"] = baseline
    band_tags = [{"BOA_ADD_OFFSET": "-1000"}] * 2 if add_offset else None
    return make_tif(tmp_path / name, dn, tags=tags, band_tags=band_tags, descriptions=["B02", "B03"])


def test_s2_l2a_offset_applied_only_with_metadata(tmp_path: Path) -> None:
    new = open_raster(_s2_file(tmp_path, "new.tif", baseline="04.00", add_offset=True)).values[0]
    np.testing.assert_allclose(new, [[np.nan, 0.0], [0.1, 0.5]], atol=1e-6)  # (DN - 1000) / 10^4, DN 0 = nodata
    old = open_raster(_s2_file(tmp_path, "old.tif", baseline="03.01", add_offset=False)).values[0]
    np.testing.assert_allclose(old, [[np.nan, 0.1], [0.2, 0.6]], atol=1e-6)
    # Offsets present but a pre-04.00 baseline: the metadata says no offset.
    pre = open_raster(_s2_file(tmp_path, "pre.tif", baseline="03.01", add_offset=True)).values[0]
    np.testing.assert_allclose(pre, old, atol=1e-6)
    # Baseline >= 04.00 without BOA_ADD_OFFSET: refuse to guess.
    bad = _s2_file(tmp_path, "bad.tif", baseline="04.00", add_offset=False)
    with pytest.raises(DcstsfInputError, match="BOA_ADD_OFFSET") as exc:
        open_raster(bad)
    assert str(bad) in str(exc.value)
    np.testing.assert_allclose(open_raster(bad, offset=-0.1).values[0, 1, 1], 0.5, atol=1e-6)


def test_wavelengths_out_of_order(tmp_path: Path) -> None:
    data = np.full((6, 2, 2), 0.2, dtype=np.float32)
    rev = [{"wavelength": str(w)} for w in (900, 800, 700, 600, 500, 400)]
    p = make_tif(tmp_path / "rev.tif", data, band_tags=rev)
    with pytest.raises(DcstsfInputError, match="out of order") as exc:
        open_raster(p)
    assert str(p) in str(exc.value)
    # One restart at a detector boundary (EnMAP VNIR -> SWIR overlap) is legitimate.
    overlap = [{"wavelength": str(w)} for w in (900, 950, 1000, 910, 1100, 1200)]
    open_raster(make_tif(tmp_path / "ok.tif", data, band_tags=overlap))
    dup = [{"wavelength": str(w)} for w in (400, 500, 500, 600, 700, 800)]
    with pytest.raises(DcstsfInputError, match="same wavelength"):
        open_raster(make_tif(tmp_path / "dup.tif", data, band_tags=dup))


def test_require_crs(tmp_path: Path) -> None:
    p = make_tif(tmp_path / "nocrs.tif", np.full((1, 2, 2), 0.1, dtype=np.float32), crs=None)
    assert open_raster(p).rio.crs is None
    with pytest.raises(DcstsfInputError, match="no CRS") as exc:
        open_raster(p, require_crs=True)
    assert str(p) in str(exc.value)


def test_bad_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tif"
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    text = tmp_path / "notes.tif"
    text.write_text("this is not a raster\n" * 20)
    good = make_tif(tmp_path / "good.tif", np.random.default_rng(1).random((8, 64, 64), dtype=np.float32))
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases = ((missing, "not found"), (empty, "empty"), (text, "not a readable raster"), (truncated, "truncated"))
    for path, words in cases:
        with pytest.raises(DcstsfInputError, match=words) as exc:
            open_raster(path)
        assert str(path) in str(exc.value)


def test_lazy_open_is_dask_backed(tmp_path: Path) -> None:
    p = write_raster(reflectance_cube(h=40, w=48), tmp_path / "c.tif")
    lazy = open_raster(p, chunks={"y": 16, "x": 16})
    assert lazy.chunks is not None and lazy.chunks[0] == (4,)  # band axis in one chunk
    assert_same_raster(lazy.compute(), open_raster(p))
    auto = open_raster(p, chunks=True)
    assert auto.chunks is not None and len(auto.chunks[0]) == 1


# ---------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("suffix", sorted(RASTER_SUFFIXES))
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    da = reflectance_cube()
    out = write_raster(da, tmp_path / f"out{suffix}")
    back = open_raster(out)
    assert_same_raster(back, da)
    assert back.attrs["method"] == "unit-test" and back.attrs["dcstsf_version"] == "0.1.0"
    assert list(back["bbl"].values) == [1, 1, 1, 1]
    assert sorted(os.listdir(tmp_path)) == [f"out{suffix}"]  # no temporaries, no sidecars


def test_geotiff_layout_and_band_metadata(tmp_path: Path) -> None:
    out = write_raster(reflectance_cube(h=40, w=40), tmp_path / "t.tif", blocksize=16)
    with rasterio.open(out) as src:
        assert src.profile["tiled"] and src.block_shapes[0] == (16, 16)
        assert src.compression is not None and src.compression.name == "deflate"
        assert src.descriptions == ("B02", "B03", "B04", "B05")
        assert float(src.tags(1)["wavelength"]) == 450.0
        assert src.tags()["method"] == "unit-test"


def test_geotiff_is_band_interleaved_with_the_predictor_asked_for(tmp_path: Path) -> None:
    da = reflectance_cube(h=40, w=40)
    plain = write_raster(da, tmp_path / "plain.tif", compress="zstd")
    with rasterio.open(plain) as src:
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["INTERLEAVE"] == "BAND" and structure["COMPRESSION"] == "ZSTD"
        assert structure.get("PREDICTOR", "1") == "1"  # float output: no predictor by default
    floated = write_raster(da, tmp_path / "float.tif", compress="zstd", predictor="float")
    with rasterio.open(floated) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
    assert_same_raster(open_raster(floated), da)
    counts = write_raster(da, tmp_path / "int.tif", dtype="int16", scale=1e-4)
    with rasterio.open(counts) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"  # integers: horizontal by default


def test_codec_options() -> None:
    assert gtiff_codec_options("zstd") == {"compress": "zstd", "zstd_level": 1}
    assert gtiff_codec_options("ZSTD", level=5, predictor="float") == {"compress": "zstd", "predictor": 3, "zstd_level": 5}
    assert gtiff_codec_options("deflate", dtype="uint16") == {"compress": "deflate", "predictor": 2}
    assert gtiff_codec_options(None) == {} and gtiff_codec_options("none") == {}
    assert cog_codec_options(gtiff_codec_options("zstd", predictor="float")) == {
        "compress": "zstd", "predictor": "FLOATING_POINT", "level": 1,
    }
    assert cog_codec_options(gtiff_codec_options("deflate", dtype="int16")) == {"compress": "deflate", "predictor": "STANDARD"}
    for kwargs, words in [
        ({"compress": "zstd", "predictor": "fancy"}, "unknown predictor 'fancy'"),
        ({"compress": "zstd", "predictor": "float", "dtype": "int16"}, "floating-point output"),
        ({"compress": None, "predictor": "float"}, "needs a codec"),
        ({"compress": "jpeg", "predictor": "horizontal"}, "takes no predictor"),
    ]:
        with pytest.raises(DcstsfInputError, match=words) as info:
            gtiff_codec_options(path="out.tif", **kwargs)
        assert "out.tif" in str(info.value)


def test_cog_output(tmp_path: Path) -> None:
    da = reflectance_cube(h=300, w=300)
    out = write_raster(da, tmp_path / "c.tif", cog=True)
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.overviews(1)
    assert_same_raster(open_raster(out), da)
    assert sorted(os.listdir(tmp_path)) == ["c.tif"]


def test_int16_output_with_scale(tmp_path: Path) -> None:
    da = reflectance_cube()
    out = write_raster(da, tmp_path / "i.tif", dtype="int16", scale=1e-4)
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "int16" and src.scales[0] == pytest.approx(1e-4) and src.nodata == -32768
    assert_same_raster(open_raster(out), da, atol=0.5e-4 + 1e-7)
    with pytest.raises(DcstsfInputError, match="scale"):
        write_raster(da, tmp_path / "j.tif", dtype="int16")


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".nc"])
def test_dask_backed_write(tmp_path: Path, suffix: str) -> None:
    da = reflectance_cube(h=70, w=90).chunk({"band": -1, "y": 32, "x": 32})
    out = write_raster(da, tmp_path / f"d{suffix}", blocksize=32)
    assert da.chunks is not None  # the input stays lazy
    assert_same_raster(open_raster(out), da.compute())


@pytest.mark.parametrize("suffix", [".tif", ".zarr", ".nc"])
def test_failed_write_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    calls = {"n": 0}

    def explode(block: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("disk on fire")
        return block

    da = reflectance_cube(h=64, w=64).chunk({"band": -1, "y": 32, "x": 32})
    bad = da.copy(data=dsa.map_blocks(explode, da.data, dtype=np.float32))
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_raster(bad, tmp_path / f"x{suffix}", blocksize=32)
    assert calls["n"] > 1  # it failed mid-write, not before starting
    assert os.listdir(tmp_path) == []


def test_failure_keeps_existing_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = write_raster(reflectance_cube(), tmp_path / "keep.tif")
    before = out.read_bytes()
    import dcstsf.io as io_mod

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError("simulated crash while writing")

    monkeypatch.setattr(io_mod, "_write_gtiff", boom)
    with pytest.raises(OSError, match="simulated crash"):
        write_raster(reflectance_cube(seed=5), out, overwrite=True)
    assert out.read_bytes() == before and os.listdir(tmp_path) == ["keep.tif"]


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_overwrite(tmp_path: Path, suffix: str) -> None:
    out = write_raster(reflectance_cube(seed=1), tmp_path / f"o{suffix}")
    with pytest.raises(DcstsfInputError, match="--overwrite") as exc:
        write_raster(reflectance_cube(seed=2), out)
    assert str(out) in str(exc.value)
    write_raster(reflectance_cube(seed=2), out, overwrite=True)
    assert_same_raster(open_raster(out), reflectance_cube(seed=2))
    assert sorted(os.listdir(tmp_path)) == [f"o{suffix}"]


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DcstsfInputError, match="suffix"):
        write_raster(reflectance_cube(), tmp_path / "x.png")


def test_netcdf_and_zarr_lazy_open(tmp_path: Path) -> None:
    da = reflectance_cube(h=40, w=40)
    for suffix in (".zarr", ".nc"):
        out = write_raster(da, tmp_path / f"l{suffix}", blocksize=16)
        lazy = open_raster(out, chunks=16)
        assert lazy.chunks is not None
        assert_same_raster(lazy.compute(), da)


def test_foreign_netcdf_with_cf_scale(tmp_path: Path) -> None:
    dn = np.full((2, 3, 3), 1500, dtype=np.int16)
    ds = xr.Dataset(
        {"refl": (("wavelength", "y", "x"), dn, {"scale_factor": 1e-4, "add_offset": 0.0, "_FillValue": -1})},
        coords={
            "wavelength": ("wavelength", [0.45, 0.55], {"units": "micrometers"}),
            "y": [2.5, 1.5, 0.5],
            "x": [0.5, 1.5, 2.5],
        },
    )
    p = tmp_path / "cf.nc"
    ds.to_netcdf(p, engine="h5netcdf")
    da = open_raster(p, band_dim="wavelength")
    np.testing.assert_allclose(da.values, 0.15, rtol=1e-6)
    np.testing.assert_allclose(da["wavelength"].values, [450.0, 550.0])


# ---------------------------------------------------------------------------------------------- ENVI


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
