"""Channel grids: the C tile kernel against the numpy path, glyph text against Pillow, NaN in red, files
rewritten in place."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from visionbench.dissect import glyphs, pictures, tile_kernel

KERNEL = tile_kernel.load_kernel()
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="no C compiler here: the numpy path draws every grid")


@needs_kernel
@pytest.mark.parametrize("shape", [(16, 320, 320), (16, 193, 200), (8, 40, 40), (3, 7, 5), (5, 1, 1), (2, 20, 300)])
def test_tile_kernel_draws_the_same_bytes_as_numpy(shape):
    rng = np.random.default_rng(sum(shape))
    maps = (rng.standard_normal(shape) * rng.uniform(0.01, 100)).astype(np.float32)
    maps[min(1, shape[0] - 1)] = 3.0  # a constant channel: mid-grey
    if shape[0] > 2:
        maps[2] = np.abs(maps[2])  # no negative values
    np.testing.assert_array_equal(pictures.channel_grid(maps, "t"), pictures.numpy_grid(maps, "t"))


@needs_kernel
def test_tile_kernel_leaves_nan_and_inf_to_numpy_which_draws_them_red():
    maps = np.random.default_rng(1).standard_normal((4, 50, 50)).astype(np.float32)
    layout = pictures.GridLayout.plan(4, 50, 50)
    for bad in (np.nan, np.inf, -np.inf):
        maps[2, 3, 3] = bad
        assert not tile_kernel.draw_tiles(maps, 1, 1, layout.blank(), layout.corners, KERNEL)
    maps[1, 49, 49] = np.nan  # in the kernel's scalar tail too
    picture = pictures.channel_grid(maps, "nan")
    assert picture.ndim == 3  # RGB only because something is red
    y, x = layout.corners[2]
    assert tuple(picture[y + 3, x + 3]) == pictures.BAD_RGB
    y, x = layout.corners[0]
    assert picture[y : y + 50, x : x + 50].min() == 0 and picture[y : y + 50, x : x + 50].max() == 255


def test_normalise_uses_each_channels_whole_range_when_subsampling():
    maps = np.zeros((1, 4, 4), np.float32)
    maps[0, 1, 1] = 10.0  # the maximum lies on a pixel that stride 2 does not show
    maps[0, 0, 0] = -10.0
    tiles, bad = pictures.normalise(maps, 2)
    assert bad is None and tiles.shape == (1, 2, 2)
    assert tiles[0, 0, 0] == 0 and tiles[0, 1, 1] == 128  # 0.0 sits mid-way in -10..10


@pytest.mark.parametrize("size", [10, 12])
@pytest.mark.parametrize("text", ["#12 model.3.conv Conv2d [1, 64, 80, 80] ch 0-15 of 64", ",j_gq(){}|", "x0.25 #3",
                                  "dépôt ∑"])  # fmt: skip
def test_glyph_text_matches_pillow(size, text):
    ours = np.full((30, 520), 40, np.uint8)
    glyphs.glyph_text(size).draw(ours, (4, 2), text, 255)
    image = Image.fromarray(np.full((30, 520), 40, np.uint8))
    ImageDraw.Draw(image).text((4, 2), text, fill=255, font=glyphs.font(size))
    theirs = np.asarray(image)
    ink = (theirs != 40).sum()
    assert ink > 50
    diff = np.abs(ours.astype(int) - theirs)
    assert diff.max() <= 8 and (diff > 0).sum() <= max(3, 0.01 * ink)  # where glyphs touch: a grey level or two


@pytest.mark.skipif(glyphs.load_kernel() is None, reason="no C compiler: text is set with numpy")
@pytest.mark.parametrize("size", [10, 12])
@pytest.mark.parametrize("xy", [(4, 2), (-7, -3), (480, 20), (0, 0)])  # inside, clipped left/top, right/bottom
@pytest.mark.parametrize("rgb", [False, True])
def test_glyph_text_c_path_gives_the_numpy_bytes(size, xy, rgb):
    rng = np.random.default_rng(size)
    shape = (30, 520, 3) if rgb else (30, 520)
    base = rng.integers(0, 256, shape, dtype=np.uint8)  # blending depends on what lies underneath
    fill = (255, 200, 10) if rgb else 255
    for text in ["#12 model.3.conv Conv2d [1, 64, 80, 80] ch 0-15 of 64", ",j_gq(){}|,", "", " ", "~" * 80]:
        ours, reference = base.copy(), base.copy()
        glyphs.glyph_text(size).draw(ours, xy, text, fill)
        glyphs.glyph_text(size).draw_numpy(reference, xy, text, fill)
        assert np.array_equal(ours, reference), text


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


def test_png_files_decode_to_the_grid(tmp_path):
    maps = np.random.default_rng(2).standard_normal((6, 30, 40)).astype(np.float32)
    picture = pictures.channel_grid(maps, "#0 layer")
    pictures.save_png(picture, tmp_path / "g.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g.png")), picture)
