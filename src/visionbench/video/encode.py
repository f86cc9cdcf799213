"""Writing the colourised depth video: H.264 in mp4, every frame at its source timestamp.

Colours use one range for the whole video (fixed from the first frame), unlike `depth`'s pictures,
whose range follows each image: with a per-frame range the colours would flicker even when the
depth does not, and the video would show the colouring, not the model.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from visionbench.depth import io


class ColourScale:
    """Depth -> RGB with a colour range fixed by the first frame it sees (near is the map's top end)."""

    def __init__(self, kind: str, cmap: str) -> None:
        io.colour_table(cmap)  # an unknown colour map fails here, not at the first frame
        self.kind, self.cmap = kind, cmap
        self.range: tuple[float, float] | None = None

    def __call__(self, depth: np.ndarray) -> Image.Image:
        near = io.nearness(depth, self.kind)
        if self.range is None:
            self.range = io.colour_range(near)
        return io.colour_picture(near, *self.range, self.cmap)


class VideoWriter:
    """An mp4 (H.264, yuv420p) written frame by frame; pts are in the source's time base.

    Odd widths or heights (which yuv420p cannot hold) are padded by one edge pixel. The file is
    closed properly by `close()`, also after an error, so the frames written so far stay playable.
    """

    def __init__(self, path: Path, width: int, height: int, time_base: Fraction, fps: float | None) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.width, self.height = width + width % 2, height + height % 2
        self.time_base = time_base
        self.container = av.open(str(self.path), "w")
        rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
        self.stream = self.container.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.codec_context.time_base = time_base
        self.frames = 0
        self._last_pts: int | None = None

    def write(self, image: Image.Image, pts: int) -> None:
        import av

        rgb = np.asarray(image.convert("RGB"))
        if rgb.shape[:2] != (self.height, self.width):
            rgb = np.pad(rgb, ((0, self.height - rgb.shape[0]), (0, self.width - rgb.shape[1]), (0, 0)), mode="edge")
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # duplicate timestamps (rare muxer quirks) must still increase
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = pts, self.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self._last_pts = pts
        self.frames += 1

    def close(self) -> None:
        try:
            if self.frames:
                for packet in self.stream.encode():
                    self.container.mux(packet)
        finally:
            self.container.close()
