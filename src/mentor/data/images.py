"""A folder of images, one sub-folder per class, as a data source read by DataLoader workers.

``root/<class>/<file>.png|.jpg|.jpeg``: classes are the sub-folder names in sorted order;
rows are the image files in sorted order (class, then file name), and a row's position in that
order is its stable sample id (what the label store, teacher caching, resume and a run's
``splits/<setting>.json`` know it by). An optional second folder of images without classes
joins the training split as unlabeled rows (ids after the labeled ones).

Images are decoded with Pillow in the DataLoader's worker processes (``data.workers``),
converted to RGB (or grayscale with ``channels: 1``), resized to ``image_size`` (bilinear) and
scaled to [0, 1]; with ``standardize`` each channel is then standardized with the mean and
standard deviation of (up to 2,048 of) the training images. Rows reach the model flat, as
``(C * H * W,)``, with ``input_shape`` ``(C, H, W)``, like every other image source.

Every file is opened and verified before training (Pillow's ``verify``: headers and, for
PNG, the chunk checksums), so an unreadable or truncated image stops a run before it starts,
naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
STATS_SAMPLE = 2048  # training images read for the per-channel mean and std


@dataclass(frozen=True)
class ImageList:
    """The files of an image folder: ``paths`` (N,), class ``labels`` (N,) (``-1``:
    unlabeled), ``classes`` (the sub-folder names)."""

    paths: tuple[str, ...]
    labels: np.ndarray
    classes: tuple[str, ...]


def is_image_folder(path: Path) -> bool:
    """A folder that is not named like a data file (``x.npz``, ``x.csv``) nor a Hugging Face
    dataset folder."""
    from .tables import TABLE_SUFFIXES, is_hf_folder
    return (path.is_dir() and path.suffix.lower() not in (*TABLE_SUFFIXES, ".npz")
            and not is_hf_folder(path))


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def list_images(root: Path, unlabeled: Path | None = None,
                field: str = "data.source") -> ImageList:
    """The labeled images of ``root`` (one sub-folder per class) and the unlabeled ones of
    ``unlabeled``; one sentence for a missing or empty folder or a class without images."""
    from .._util.safeio import shown
    if not root.is_dir():
        raise DataError(f"{field}: {shown(root)} "
                        f"{'is not a folder' if root.exists() else 'does not exist'}; expected "
                        "a folder with one sub-folder of images per class")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{field}: {shown(root)} has {len(classes)} class sub-folder"
                        f"{'' if len(classes) == 1 else 's'}; expected one sub-folder of "
                        f"images per class, at least 2 ({', '.join(IMAGE_SUFFIXES)} files)")
    paths, labels = [], []
    for c, name in enumerate(classes):
        files = _images_in(root / name)
        if not files:
            raise DataError(f"{field}: class folder {shown(root / name)} has no image; "
                            f"expected {', '.join(IMAGE_SUFFIXES)} files in every class folder")
        paths += [str(f) for f in files]
        labels += [c] * len(files)
    if unlabeled is not None:
        if not unlabeled.is_dir():
            raise DataError(f"data.unlabeled: {shown(unlabeled)} is not a folder; expected a "
                            "folder of images without classes")
        files = _images_in(unlabeled)
        if not files:
            raise DataError(f"data.unlabeled: {shown(unlabeled)} has no image; expected "
                            f"{', '.join(IMAGE_SUFFIXES)} files")
        paths += [str(f) for f in files]
        labels += [-1] * len(files)
    return ImageList(tuple(paths), np.asarray(labels, dtype=np.int64), tuple(classes))


def verify_images(paths: tuple[str, ...], field: str = "data.source") -> None:
    """Open and verify every file; the first that Pillow cannot read stops with its name."""
    from PIL import Image

    from .._util.safeio import shown
    for p in paths:
        try:
            with Image.open(p) as im:
                im.verify()
        except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, ...
            raise DataError(f"{field}: image {shown(p)} cannot be read ({_reason(e)}); "
                            "expected a complete PNG or JPEG file") from None


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:160] if text else type(e).__name__


class ImageFiles(torch.utils.data.Dataset):
    """Map-style dataset of image files: item ``i`` is file ``i`` decoded, as RGB (``channels``
    3) or grayscale (1), resized to ``size`` (H, W), scaled to [0, 1] and standardized per
    channel with ``mean``/``std`` (``(C,)``; ``None``: left in [0, 1]), flat ``(C*H*W,)``."""

    def __init__(self, paths, size: tuple[int, int], channels: int,
                 mean: np.ndarray | None = None, std: np.ndarray | None = None):
        self.paths, self.size, self.channels = list(paths), tuple(size), channels
        self.mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        self.std = None if std is None else torch.as_tensor(std, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.paths)

    def pixels(self, i: int) -> torch.Tensor:
        """Image ``i`` as uint8 ``(C, H, W)``."""
        from PIL import Image
        with Image.open(self.paths[i]) as im:
            im = im.convert("RGB" if self.channels == 3 else "L")
            h, w = self.size
            if im.size != (w, h):
                im = im.resize((w, h), Image.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(a))

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.pixels(i).to(torch.float32).div_(255.0)
        if self.mean is not None:
            x = (x - self.mean.view(-1, 1, 1)) / self.std.view(-1, 1, 1)
        return x.reshape(-1)


def channel_stats(files: ImageFiles, rows: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Per-channel mean and std of (up to :data:`STATS_SAMPLE` of) ``rows``' images in [0, 1]."""
    rng = np.random.default_rng(seed)
    pick = rows if len(rows) <= STATS_SAMPLE else rng.choice(rows, STATS_SAMPLE, replace=False)
    total = torch.zeros(files.channels, dtype=torch.float64)
    square = torch.zeros(files.channels, dtype=torch.float64)
    count = 0
    for i in np.sort(pick):
        x = files.pixels(int(i)).to(torch.float64).div_(255.0).flatten(1)
        total += x.sum(1)
        square += (x * x).sum(1)
        count += x.shape[1]
    mean = total / count
    std = (square / count - mean * mean).clamp_min(0).sqrt()
    std[std < 1e-8] = 1.0
    return mean.numpy().astype(np.float32), std.numpy().astype(np.float32)
