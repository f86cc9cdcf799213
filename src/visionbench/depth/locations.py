"""Where the Ray engine reads images and writes outputs: local paths or filesystem URLs (s3://, gs://, file://).

Local inputs and a local output folder are planned by `outputs.scan_inputs`, exactly as the local engine
plans them, so both engines give each image the same output names. For URLs, fsspec lists the files and
this module gives them the same relative layout (`ROOT/a/b.jpg` -> `OUT/a/b.*`). Remote outputs are
written to a local scratch folder by the local engine's writers and then uploaded, sidecar last: an object
store PUT is atomic, so a retried or interrupted image never leaves half a file there either.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from visionbench.depth.outputs import OutputPlan, scan_inputs
from visionbench.errors import BadInputError
from visionbench.images import IMAGE_SUFFIXES


def is_url(location: str | Path) -> bool:
    """A filesystem URL other than file:// (which is a local path in disguise)."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def local_path(location: str | Path) -> Path:
    text = str(location)
    return Path(text.removeprefix("file://")) if text.startswith("file://") else Path(text)


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of a URL and the path inside it; one clear error when no driver is installed."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise BadInputError(f"{url}: cannot open this filesystem ({exc})") from exc


@dataclass(frozen=True)
class ImageJob:
    """One image to do: where it is read from and the output base name (a local path or a URL, no suffix)."""

    index: int
    source: str
    base: str

    def files(self, **kw: Any) -> dict[str, str]:
        names = OutputPlan(Path(self.source), Path("x")).files(**kw)
        return {k: self.base + p.name[1:] for k, p in names.items()}  # "x.depth.png" -> BASE.depth.png


def plan_jobs(inputs: list[str | Path], out: str | Path) -> tuple[list[ImageJob], int]:
    """Every image of `inputs` with its output base, and how many files were left out for lying in `out`."""
    if not any(is_url(i) for i in inputs) and not is_url(out):
        scan = scan_inputs([local_path(i) for i in inputs], local_path(out))
        return [ImageJob(i, str(p.source), str(p.base)) for i, p in enumerate(scan.plans)], len(scan.excluded)
    jobs: list[ImageJob] = []
    used: set[str] = set()
    out_root = str(out).rstrip("/") if is_url(out) else str(local_path(out).expanduser().resolve())
    for item in inputs:
        for source, rel in _list_images(item):
            rel_path = PurePosixPath(rel)
            stem = f"{out_root}/{rel_path.parent / rel_path.stem}"
            base = stem
            if base in used:  # a.jpg and a.png side by side, or one name from two inputs (as scan_inputs)
                base, n = f"{stem}_{rel_path.suffix.lstrip('.').lower()}", 2
                while base in used:
                    base, n = f"{stem}_{n}", n + 1
            used.add(base)
            jobs.append(ImageJob(len(jobs), source, base))
    return jobs, 0


def _list_images(item: str | Path) -> list[tuple[str, str]]:
    """(source, path relative to the input's root) for an image, a folder or a prefix; sorted like find_images."""
    if not is_url(item):
        from visionbench.images import find_images

        root = local_path(item).expanduser()
        found = find_images([root])
        base_dir = root.resolve() if root.is_dir() else root.resolve().parent
        out = []
        for p in found:
            r = p.resolve()
            out.append((str(p), str(r.relative_to(base_dir)) if r.is_relative_to(base_dir) else r.name))
        return out
    fs, path = filesystem(str(item))
    scheme = str(item).split("://", 1)[0]
    try:
        if fs.isdir(path):
            keys = sorted(k for k in fs.find(path) if PurePosixPath(k).suffix.lower() in IMAGE_SUFFIXES)
            root = path.rstrip("/")
            return [(f"{scheme}://{k}", k[len(root) + 1 :]) for k in keys]
        if fs.exists(path):
            return [(str(item), PurePosixPath(path).name)]
    except OSError as exc:
        raise BadInputError(f"{item}: cannot list ({type(exc).__name__}: {exc})") from exc
    raise BadInputError(f"{item}: no such file or folder")


def read_image(source: str) -> tuple[Any, float | None, str | None]:
    """(RGB image, EXIF 35 mm focal length or None, error or None), with the local engine's error texts."""
    from visionbench.depth.loader import decode_image

    if not is_url(source):
        item = decode_image(0, Path(source), read_exif=True)
        return item.image, item.exif_focal_35mm, item.error
    try:
        fs, path = filesystem(source)
        data = fs.cat_file(path)
    except Exception as exc:  # noqa: BLE001 - a file that cannot be fetched is that image's failure
        return None, None, f"{source}: cannot read ({type(exc).__name__}: {exc})"
    with tempfile.TemporaryDirectory(prefix="vb-read-") as tmp:
        local = Path(tmp) / PurePosixPath(path).name
        local.write_bytes(data)
        item = decode_image(0, local, read_exif=True)
        return item.image, item.exif_focal_35mm, item.error.replace(str(local), source) if item.error else None


def outputs_whole(jobs: list[ImageJob], out: str, **kw: Any) -> set[int]:
    """The images whose output files all exist (each was written atomically, so existing means whole).

    For a URL the output prefix is listed once: one request per file would take hours for a million images.
    """
    if not is_url(out):
        return {j.index for j in jobs if all(os.path.exists(p) for p in j.files(**kw).values())}
    fs, root = filesystem(out)
    try:
        existing = {fs.unstrip_protocol(k) for k in fs.find(root)}
    except FileNotFoundError:
        return set()
    return {j.index for j in jobs if all(p in existing for p in j.files(**kw).values())}


def upload(local_files: dict[str, Path], job: ImageJob, **kw: Any) -> None:
    """Copy an image's files from scratch space to their URLs, the sidecar last (its presence means done)."""
    fs, _ = filesystem(job.base)
    targets = job.files(**kw)
    for key in sorted(local_files, key=lambda k: k == "sidecar"):
        fs.put_file(str(local_files[key]), filesystem(targets[key])[1])


def write_text_to(location: str, text: str) -> None:
    """A small text file (summary, failures list) to a local path (atomically) or a URL."""
    if is_url(location):
        fs, path = filesystem(location)
        with fs.open(path, "wb") as fh:
            fh.write(text.encode())
        return
    from visionbench.files import write_text

    write_text(local_path(location), text)
