"""Channel grids: tiles in order and each channel on its own range, NaN in red, small maps enlarged and big
ones subsampled, labels drawn, PNG files that decode to the grid, files rewritten in place."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from visionbench.dissect import pictures

GAP = pictures.GAP


def _tile(picture: np.ndarray, i: int, cols: int, h: int, w: int) -> np.ndarray:
    r, c = divmod(i, cols)
    y, x = GAP + r * (h + GAP), GAP + c * (w + GAP)
    return picture[y : y + h, x : x + w]


def test_tiles_run_in_rows_each_channel_on_its_own_range():
    rng = np.random.default_rng(0)
    maps = (rng.standard_normal((5, 40, 36)) * np.array([1, 10, 100, 0.1, 1])[:, None, None]).astype(np.float32)
    maps[3] = 7.0  # constant: mid-grey
    picture = pictures.channel_grid(maps)
    assert picture.ndim == 2 and picture.shape == (2 * (40 + GAP) + GAP, 3 * (36 + GAP) + GAP)  # 3 columns
    for i in range(5):
        tile = _tile(picture, i, 3, 40, 36)
        if i == 3:
            assert (tile == 128).all()
        else:
            assert tile.min() == 0 and tile.max() == 255
            assert np.unravel_index(tile.argmax(), tile.shape) == np.unravel_index(maps[i].argmax(), maps[i].shape)
    assert (_tile(picture, 5, 3, 40, 36) == pictures.BACKGROUND).all()  # the empty cell


def test_nan_and_inf_are_red_and_the_rest_keeps_its_range():
    maps = np.random.default_rng(1).standard_normal((4, 50, 50)).astype(np.float32)
    maps[2, 3, 3], maps[2, 4, 4], maps[1, 49, 49] = np.nan, np.inf, -np.inf
    picture = pictures.channel_grid(maps)
    assert picture.ndim == 3  # RGB only because something is red
    assert tuple(_tile(picture, 2, 2, 50, 50)[3, 3]) == tuple(_tile(picture, 2, 2, 50, 50)[4, 4]) == pictures.BAD_RGB
    assert tuple(_tile(picture, 1, 2, 50, 50)[49, 49]) == pictures.BAD_RGB
    finite = _tile(picture, 2, 2, 50, 50)[..., 1][np.isfinite(maps[2])]
    assert finite.min() == 0 and finite.max() == 255


@pytest.mark.parametrize(("side", "tile"), [(4, 32), (10, 30), (100, 100), (400, 134), (1000, 167)])
def test_small_maps_are_enlarged_and_big_ones_subsampled(side, tile):
    picture = pictures.channel_grid(np.random.default_rng(side).standard_normal((1, side, side)).astype(np.float32))
    assert picture.shape == (tile + 2 * GAP, tile + 2 * GAP)


def test_labels_are_drawn_above_their_tiles():
    tiles = np.zeros((4, 40, 40), np.uint8)
    plain = pictures.grid(tiles)
    labelled = pictures.grid(tiles, labels=["x0.25 #0", "x0.5 #1", "x1 #2", "x1 #3"])
    assert labelled.shape[0] == plain.shape[0] + 2 * pictures.LABEL_PX and labelled.ndim == 3
    band = labelled[GAP : GAP + pictures.LABEL_PX, GAP : GAP + 40]
    assert (band > 200).any()  # white ink in the first label band
    assert (labelled[GAP + pictures.LABEL_PX : GAP + pictures.LABEL_PX + 40, GAP : GAP + 40] == 0).all()


def test_normalise_uses_each_channels_whole_range_when_subsampling():
    maps = np.zeros((1, 4, 4), np.float32)
    maps[0, 1, 1] = 10.0  # the maximum lies on a pixel that stride 2 does not show
    maps[0, 0, 0] = -10.0
    tiles, bad = pictures.normalise(maps, 2)
    assert bad is None and tiles.shape == (1, 2, 2)
    assert tiles[0, 0, 0] == 0 and tiles[0, 1, 1] == 128  # 0.0 sits mid-way in -10..10


def test_rewrite_overwrites_in_place_and_cuts_a_longer_old_file(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 1000)
    inode = path.stat().st_ino
    with pictures.rewrite(path) as f:
        f.write(b"short")
    assert path.read_bytes() == b"short" and path.stat().st_ino == inode
    with pictures.rewrite(tmp_path / "new.bin") as f:
        f.write(b"new")
    assert (tmp_path / "new.bin").read_bytes() == b"new"


@pytest.mark.parametrize("level", [0, 6])
def test_png_files_decode_to_the_grid(tmp_path, level):
    maps = np.random.default_rng(2).standard_normal((6, 30, 40)).astype(np.float32)
    grey = pictures.channel_grid(maps)
    pictures.save_png(grey, tmp_path / "g.png", level)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g.png").convert("L")), grey)
    maps[0, 0, 0] = np.nan
    rgb = pictures.channel_grid(maps)
    pictures.save_png(rgb, tmp_path / "c.png", level)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c.png").convert("RGB")), rgb)
