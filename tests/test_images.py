"""Image loading: every kind of bad file becomes one clear BadInputError; odd modes become RGB."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from visionbench.errors import BadInputError
from visionbench.images import default_image_path, find_images, load_image


def test_default_image_is_a_real_photo():
    im = load_image(default_image_path())
    assert im.mode == "RGB" and im.size == (810, 1080)


@pytest.mark.parametrize(
    "content,needle",
    [(b"", "empty file"), (b"this is text, not pixels", "not an image"), (None, "no such file")],
)
def test_bad_files(tmp_path, content, needle):
    path = tmp_path / "x.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BadInputError, match=needle):
        load_image(path)


def test_truncated_jpeg(tmp_path, photo_paths):
    data = photo_paths[0].read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(BadInputError, match="corrupt or truncated"):
        load_image(path)


def test_pixel_limit(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (400, 300)).save(path)
    with pytest.raises(BadInputError, match="above the limit"):
        load_image(path, max_pixels=100_000)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "LA", "CMYK"])
def test_modes_become_rgb(tmp_path, mode):
    path = tmp_path / f"img_{mode.replace(';', '')}.{'tiff' if mode == 'CMYK' else 'png'}"
    base = Image.fromarray((np.arange(64 * 48) % 251).reshape(48, 64).astype(np.uint8))
    img = (
        base.convert(mode)
        if mode != "I;16"
        else Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16))
    )
    img.save(path)
    out = load_image(path)
    assert out.mode == "RGB" and out.size == (64, 48)


def test_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    Image.new("RGB", (64, 32), "red").save(path, exif=exif)
    assert load_image(path).size == (32, 64)


def test_find_images_from_folders_and_lists(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ["a/1.jpg", "a/b/2.PNG", "a/notes.md", "3.webp"]:
        (tmp_path / rel).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("3.webp\n# comment\n\na/1.jpg\n")
    assert [p.name for p in find_images([tmp_path / "a"])] == ["1.jpg", "2.PNG"]
    assert [p.name for p in find_images([listing])] == ["3.webp", "1.jpg"]
    with pytest.raises(BadInputError, match="no such file or folder"):
        find_images([tmp_path / "missing"])
