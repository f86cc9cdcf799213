"""Frames from a video file (PyAV) or a folder of images, one at a time, with their timestamps.

Why this shape: a long 4K video must never be held in memory, so frames are yielded as decoded.
The rotation phones store in the container (the display matrix) is applied, so the model sees the
picture a player shows; timestamps come from each frame's pts, so variable frame rate is kept.
Problems a user can fix (corrupt file, no video stream, no decoder, mixed frame sizes) are one
`BadInputError` line; a failure after some frames were decoded says how many came first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from visionbench.errors import BadInputError
from visionbench.images import IMAGE_SUFFIXES, load_image

EXIF_ORIENTATION = 0x0112


@dataclass
class Frame:
    """One decoded frame: its position in the source, its presentation time and the RGB picture."""

    index: int  # 0-based position among all frames of the source (before --every/--start/--end)
    time_s: float  # presentation time in seconds
    pts: int  # presentation time in units of the source's time base
    image: Image.Image


@dataclass
class SourceInfo:
    """What the source is, before decoding it: JSON-ready facts for the run's record."""

    path: str
    kind: str  # "video" or "frames"
    width: int  # after rotation
    height: int
    time_base: Fraction
    fps: float | None  # average frame rate (a VFR video's timestamps are what counts)
    frames: int | None  # from the container; None when it does not say
    codec: str | None = None
    rotation_deg: int = 0  # counter-clockwise rotation applied to every frame

    def record(self) -> dict[str, object]:
        return {"path": self.path, "kind": self.kind, "width": self.width, "height": self.height,
                "time_base": str(self.time_base), "fps": self.fps, "frames": self.frames, "codec": self.codec,
                "rotation_deg": self.rotation_deg}  # fmt: skip


class FrameError(BadInputError):
    """Decoding stopped part-way; the frames before it were delivered."""


def natural_key(name: str) -> list[object]:
    """frame2 before frame10: digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


class FrameSource:
    """Open a video file or a folder of frames; iterate `frames()` to decode them lazily."""

    def __init__(self, path: str | Path, *, folder_fps: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise BadInputError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            self._files = sorted(
                (p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                key=lambda p: natural_key(p.name),
            )
            if not self._files:
                raise BadInputError(f"{self.path}: no frames found (looked for {', '.join(IMAGE_SUFFIXES)})")
            if not (folder_fps > 0 and math.isfinite(folder_fps)):
                raise BadInputError(f"--fps {folder_fps}: must be a positive number")
            w, h = _check_sizes(self._files)
            tb = Fraction(folder_fps).limit_denominator(1001) ** -1
            self.info = SourceInfo(str(self.path), "frames", w, h, tb, folder_fps, len(self._files))
        else:
            self.info = _probe_video(self.path)

    def frames(self, start_s: float = 0.0, end_s: float | None = None, every: int = 1) -> Iterator[Frame]:
        """Frames with start_s <= time < end_s, every `every`-th of them (counted from the first kept)."""
        inner = self._folder_frames() if self.info.kind == "frames" else self._video_frames(start_s)
        kept = 0
        for frame in inner:
            if frame.time_s < start_s - 1e-9:
                continue
            if end_s is not None and frame.time_s >= end_s:
                return
            if kept % every == 0:
                yield frame
            kept += 1

    def _folder_frames(self) -> Iterator[Frame]:
        tb = self.info.time_base
        for i, p in enumerate(self._files):
            image = load_image(p)
            if image.size != (self.info.width, self.info.height):
                raise FrameError(f"{p}: {image.width}x{image.height}, but the first frame is "
                                 f"{self.info.width}x{self.info.height}; a video needs one size")  # fmt: skip
            yield Frame(i, float(i * tb), i, image)

    def _video_frames(self, start_s: float) -> Iterator[Frame]:
        import av

        try:
            container = av.open(str(self.path))
        except av.error.FFmpegError as exc:
            raise BadInputError(f"{self.path}: cannot open ({exc})") from exc
        count = 0
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = stream.time_base or Fraction(1, 1000)
            if start_s > 0:  # jump near the start instead of decoding everything before it
                container.seek(int(start_s / tb), stream=stream, backward=True, any_frame=False)
            decoded, last = container.decode(stream), -1
            while True:
                try:
                    av_frame = next(decoded)
                except StopIteration:
                    break
                except av.error.FFmpegError as exc:
                    raise FrameError(
                        f"{self.path}: decoding failed after {count} frame(s) ({exc}); corrupt file?"
                    ) from exc
                pts = av_frame.pts if av_frame.pts is not None else count
                index = count if start_s <= 0 else round(float(pts * tb) * (self.info.fps or 30.0))
                index = max(index, last + 1)  # estimated after a seek: never two frames with one index
                last = index
                image = _rotated(av_frame.to_ndarray(format="rgb24"), self.info.rotation_deg)
                yield Frame(index, float(pts * tb), int(pts), Image.fromarray(image))
                count += 1
        finally:
            container.close()
        if count == 0:
            raise BadInputError(f"{self.path}: the video stream has no frames")
        expected = self.info.frames
        if start_s <= 0 and expected and count < expected:
            raise FrameError(f"{self.path}: the video ended after {count} of {expected} frames (truncated file?)")


def _probe_video(path: Path) -> SourceInfo:
    import av

    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise BadInputError(f"{path}: not a video PyAV can read ({exc}); corrupt or truncated file?") from exc
    try:
        if not container.streams:
            raise BadInputError(f"{path}: no streams at all; a video with zero frames?")
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            raise BadInputError(f"{path}: no video stream (streams: {', '.join(kinds)}); an audio-only file?")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        name = getattr(stream.codec, "name", None) if _has_decoder(stream) else None
        if name is None:
            tag = getattr(ctx, "codec_tag", "") or "unknown"
            raise BadInputError(f"{path}: unsupported video codec ({tag!r}): this FFmpeg has no decoder for it")
        rotation = _first_rotation(container, stream)
        w, h = ctx.width, ctx.height
        if rotation % 180:
            w, h = h, w
        fps = float(stream.average_rate) if stream.average_rate else None
        return SourceInfo(str(path), "video", w, h, stream.time_base or Fraction(1, 1000), fps,
                          stream.frames or None, name, rotation)  # fmt: skip
    finally:
        container.close()


def _has_decoder(stream: object) -> bool:
    try:
        codec = stream.codec  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - PyAV raises when FFmpeg knows no codec for the stream
        return False
    return codec is not None and getattr(codec, "name", "none") not in {"none", ""}


def _first_rotation(container: object, stream: object) -> int:
    """The display matrix's rotation, read from the first frame (0 when the file has none)."""
    import av

    try:
        for frame in container.decode(stream):  # type: ignore[attr-defined]
            return int(round((frame.rotation or 0) / 90.0)) * 90 % 360
    except av.error.FFmpegError:
        return 0  # decoding problems are reported when the frames are read, with their count
    return 0


def _rotated(rgb: np.ndarray, rotation_deg: int) -> np.ndarray:
    """Rotate counter-clockwise by the display matrix's angle (what players do)."""
    k = (rotation_deg // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _check_sizes(files: list[Path]) -> tuple[int, int]:
    """Every frame's size from its header (EXIF rotation counted), before any work starts."""
    sizes: tuple[int, int] | None = None
    for p in files:
        try:
            with Image.open(p) as im:
                w, h = im.size
                # JPEG and TIFF keep EXIF in the header; for PNG getexif() decodes the whole file
                if im.format in {"JPEG", "MPO", "TIFF"} and im.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                    w, h = h, w
        except Exception as exc:  # noqa: BLE001 - an unreadable frame: one line naming it
            raise BadInputError(f"{p}: not an image Pillow can read ({type(exc).__name__})") from exc
        if sizes is None:
            sizes = (w, h)
        elif (w, h) != sizes:
            raise BadInputError(f"{p}: {w}x{h}, but {files[0].name} is {sizes[0]}x{sizes[1]}; "
                                "frames of a video must share one size")  # fmt: skip
    assert sizes is not None
    return sizes
