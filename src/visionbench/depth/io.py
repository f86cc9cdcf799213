"""Depth files on disk: atomic writes, colourised pictures with a metre scale, 16-bit millimetre PNGs, npy.

Every writer goes through `atomic_write`: bytes land in a temporary file beside the target and are
renamed over it, so an interrupted run never leaves a half-written file that `--resume` would trust.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from visionbench.errors import UnsupportedOptionError
from visionbench.files import atomic_write, write_bytes, write_json  # noqa: F401 - depth.io is where depth code writes

MM_PER_M = 1000.0
PNG16_MAX = 65535  # 65.535 m: farther depths saturate in the 16-bit PNG (the .npy keeps them)
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the last chunk of every PNG: length 0, IEND, its CRC
FAR_INDEX = 24  # colour-table entry of the farthest depth; 0..23 are skipped (see colourise)


# zlib level of every PNG written: folders of thousands are limited by the writer, and level 1 costs a
# fraction of Pillow's default 6 for files a few per cent bigger (benchmarks/component_costs.py measures it).
PNG_LEVEL = 1


def save_image(path: Path, image: Image.Image, fmt: str = "PNG") -> Path:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **({"compress_level": PNG_LEVEL} if fmt == "PNG" else {}))
    return write_bytes(path, buf.getvalue())


def save_npy(path: Path, array: np.ndarray) -> Path:
    return atomic_write(path, lambda fh: np.save(fh, np.ascontiguousarray(array, dtype=np.float32)))


def is_whole(path: Path) -> bool:
    """The file is there and complete: .npy as long as its header says, PNG chunks intact to IEND,
    .ply with every vertex its header counts, JSON parses. `--resume` trusts only whole files."""
    path = Path(path)
    try:
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return _npy_whole(path)
        if suffix == ".png":
            with Image.open(path) as im:
                im.verify()  # reads every chunk and checks its CRC, up to IEND
            with open(path, "rb") as fh:  # verify stops at IEND's name: the file must end with the whole chunk
                fh.seek(-len(PNG_END), 2)
                return fh.read() == PNG_END
        if suffix == ".ply":
            return _ply_whole(path)
        if suffix == ".json":
            json.loads(path.read_bytes())
            return True
        return path.is_file()
    except (OSError, ValueError, SyntaxError, EOFError):  # PIL reports broken files with all of these
        return False


def _npy_whole(path: Path) -> bool:
    with open(path, "rb") as fh:
        fmt = np.lib.format
        major, _minor = fmt.read_magic(fh)
        read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, _fortran, dtype = read_header(fh)
        expected = fh.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return path.stat().st_size == expected


def _ply_whole(path: Path) -> bool:
    """A binary PLY as `pointcloud.write_ply` writes it: header, then vertex count x record size bytes."""
    sizes = {"float": 4, "uchar": 1, "double": 8, "int": 4, "uint": 4, "short": 2, "ushort": 2, "char": 1}
    with open(path, "rb") as fh:
        head = fh.read(4096)
        end = head.find(b"end_header\n")
        if not head.startswith(b"ply\n") or end < 0:
            return False
        lines = head[:end].decode("ascii").splitlines()
        count = int(next(ln for ln in lines if ln.startswith("element vertex")).split()[-1])
        record = sum(sizes[ln.split()[1]] for ln in lines if ln.startswith("property "))
    return path.stat().st_size == end + len(b"end_header\n") + count * record


def depth_to_png16(depth_m: np.ndarray) -> np.ndarray:
    """Metres -> uint16 millimetres; invalid (non-finite or <= 0) pixels are 0, far ones saturate."""
    mm = np.where(np.isfinite(depth_m) & (depth_m > 0), depth_m * MM_PER_M, 0.0)
    return np.clip(np.rint(mm), 0, PNG16_MAX).astype(np.uint16)


def save_png16_mm(path: Path, depth_m: np.ndarray) -> Path:
    return save_image(path, Image.fromarray(depth_to_png16(depth_m)))


def read_png16(path: Path, scale: float = 1.0 / MM_PER_M) -> np.ndarray:
    """A 16-bit PNG as float32 depth (value * scale); 0 means unknown and becomes inf."""
    with Image.open(path) as im:
        if im.mode not in {"I;16", "I;16B", "I;16L", "I"}:
            raise ValueError(f"{path}: a depth PNG must be 16-bit single-channel, found mode {im.mode}")
        raw = np.asarray(im).astype(np.float32)
    return np.where(raw > 0, raw * scale, np.inf).astype(np.float32)


@lru_cache(maxsize=16)
def colour_table(cmap: str) -> np.ndarray:
    """A [256, 3] uint8 lookup table for a matplotlib colour map name."""
    import matplotlib

    try:
        cm = matplotlib.colormaps[cmap]
    except KeyError as exc:
        raise UnsupportedOptionError(
            f"--cmap {cmap!r}: not a matplotlib colour map (try inferno, magma, turbo, viridis, gray)"
        ) from exc
    return (cm(np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def nearness(depth: np.ndarray, kind: str) -> np.ndarray:
    """Inverse depth for metric maps (relative maps already are): larger means nearer, finite or nan."""
    d = depth.astype(np.float32, copy=False)
    if kind == "metric":
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(np.isfinite(d) & (d > 0), 1.0 / d, np.nan)
        return inv.astype(np.float32)
    return np.where(np.isfinite(d), d, np.nan).astype(np.float32)


def colour_range(near: np.ndarray) -> tuple[float, float]:
    """2nd and 98th percentiles of the nearness: a few outliers never wash out the picture."""
    vals = near[np.isfinite(near)]
    if vals.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(vals, [2, 98])
    if hi <= lo:
        lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:
        hi = lo + 1e-6
    return float(lo), float(hi)


def colour_picture(near: np.ndarray, lo: float, hi: float, cmap: str) -> Image.Image:
    """Nearness in [lo, hi] through the colour map; unknown depth is black."""
    t = np.clip((near - lo) / (hi - lo), 0.0, 1.0)
    # the map's darkest entries are left out so that the farthest depth never looks like unknown (black)
    idx = np.where(np.isfinite(t), np.rint(FAR_INDEX + t * (255 - FAR_INDEX)), 0).astype(np.uint8)
    rgb = colour_table(cmap)[idx]
    rgb[~np.isfinite(near)] = 0
    return Image.fromarray(rgb, "RGB")


def colourise(depth: np.ndarray, kind: str, cmap: str = "inferno", scale_bar: bool | None = None) -> Image.Image:
    """Near bright, far dark (the colour map's top end is near); a metre scale below for metric depth."""
    near = nearness(depth, kind)
    lo, hi = colour_range(near)
    picture = colour_picture(near, lo, hi, cmap)
    if scale_bar if scale_bar is not None else kind == "metric":
        picture = _with_scale_bar(picture, lo, hi, cmap)
    return picture


def _with_scale_bar(picture: Image.Image, inv_lo: float, inv_hi: float, cmap: str) -> Image.Image:
    """A strip under the picture: the colour gradient (far left, near right) with depths in metres."""
    w, h = picture.size
    font_px = max(9, min(24, w // 40))
    bar_h, text_h = max(6, font_px), font_px + 4
    strip = Image.new("RGB", (w, bar_h + text_h + 4), (0, 0, 0))
    ramp = np.linspace(FAR_INDEX, 255, w).round().astype(np.uint8)
    strip.paste(Image.fromarray(np.repeat(colour_table(cmap)[ramp][None], bar_h, axis=0), "RGB"), (0, 2))
    draw = ImageDraw.Draw(strip)
    font = _font(font_px)
    ticks = 5 if w >= 320 else 3 if w >= 120 else 2
    for i in range(ticks):
        frac = i / (ticks - 1)
        inv = inv_lo + frac * (inv_hi - inv_lo)
        label = _metres(1.0 / inv) if inv > 0 else "inf"
        x = int(frac * (w - 1))
        tw = draw.textlength(label, font=font)
        draw.line([(x, 2), (x, bar_h + 2)], fill=(255, 255, 255))
        draw.text((min(max(0, x - tw / 2), w - tw), bar_h + 3), label, fill=(255, 255, 255), font=font)
    out = Image.new("RGB", (w, h + strip.height))
    out.paste(picture, (0, 0))
    out.paste(strip, (0, h))
    return out


def _metres(d: float) -> str:
    return f"{d:.2f} m" if d < 10 else f"{d:.1f} m" if d < 100 else f"{d:.0f} m"


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def side_by_side(photo: Image.Image, picture: Image.Image) -> Image.Image:
    """The photo left, the depth picture right (the scale strip hangs below the depth only)."""
    if picture.width != photo.width:
        photo = photo.resize((picture.width, round(photo.height * picture.width / photo.width)))
    out = Image.new("RGB", (photo.width + picture.width, max(photo.height, picture.height)))
    out.paste(photo.convert("RGB"), (0, 0))
    out.paste(picture, (photo.width, 0))
    return out
