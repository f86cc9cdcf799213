"""Image loading: every kind of bad file becomes one clear BadInputError; odd modes become RGB."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from visionbench.errors import BadInputError
from visionbench.images import DEFAULT_MAX_PIXELS, default_image_path, find_images, load_image, max_pixels


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


def test_pixel_limit(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("L", (400, 300)).save(path)
    monkeypatch.setenv("VISIONBENCH_MAX_PIXELS", "100000")
    with pytest.raises(BadInputError, match="above the limit"):
        load_image(path)


def _png_header(path, width: int, height: int) -> None:
    """A PNG that declares width x height but holds no pixel data: the limit is read from the header,
    so a 180 MP image costs nothing to test."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


@pytest.mark.parametrize(
    "side,env,refused",
    [
        ((10_000, 9_000), None, False),  # 90 MP: above Pillow's 89.5 MP warning, below the documented limit
        ((13_400, 13_400), None, True),  # 179.6 MP: above 178.9 MP
        ((13_400, 13_400), "200_000_000", False),  # raised
        ((400, 300), "100000", True),  # lowered
    ],
)
def test_pixel_limit_is_the_documented_one_and_the_variable_moves_it(tmp_path, monkeypatch, side, env, refused):
    assert DEFAULT_MAX_PIXELS == 178_956_970
    if env is None:
        monkeypatch.delenv("VISIONBENCH_MAX_PIXELS", raising=False)
    else:
        monkeypatch.setenv("VISIONBENCH_MAX_PIXELS", env)
    path = tmp_path / "big.png"
    if side == (400, 300):
        Image.new("L", side).save(path)
    else:
        _png_header(path, *side)
    if refused:
        with pytest.raises(BadInputError, match="above the limit"):
            load_image(path)
    else:
        try:
            load_image(path)  # a header-only file then fails as truncated: past the limit, not refused by it
        except BadInputError as exc:
            assert "above the limit" not in str(exc) and "bomb" not in str(exc)


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5e9"])
def test_a_bad_pixel_limit_is_one_clear_line(monkeypatch, value, photo_paths):
    monkeypatch.setenv("VISIONBENCH_MAX_PIXELS", value)
    with pytest.raises(BadInputError, match="VISIONBENCH_MAX_PIXELS=.*positive whole number") as info:
        max_pixels()
    assert "\n" not in str(info.value)
    with pytest.raises(BadInputError, match="VISIONBENCH_MAX_PIXELS"):
        load_image(photo_paths[0])


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


def test_a_bad_pixel_limit_variable_is_one_line_before_any_work(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from visionbench.cli import app

    monkeypatch.setenv("VISIONBENCH_MAX_PIXELS", "abc")
    res = CliRunner().invoke(app, ["depth", str(tmp_path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "VISIONBENCH_MAX_PIXELS='abc'" in res.output and not (tmp_path / "out").exists()


def test_a_lowered_pixel_limit_names_the_limit_the_user_set(tmp_path, monkeypatch, photo_paths):
    monkeypatch.setenv("VISIONBENCH_MAX_PIXELS", "10")  # far below: Pillow itself refuses while opening
    with pytest.raises(BadInputError, match=r"above the limit of 10 pixels"):
        load_image(photo_paths[0])
