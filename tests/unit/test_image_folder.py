"""A folder of images (one sub-folder per class) as a data source: files in sorted order are
the rows, decoded by Pillow in DataLoader workers; a run on it equals the run on the same
pixels held in memory, bit for bit, and resumes mid-epoch exactly; bad folders and files are
refused in one sentence naming them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mentor.data import load
from mentor.data.image_source import image_folder_splits
from mentor.data.images import ImageFiles
from mentor.errors import DataError
from mentor.methods import get_method
from mentor.models import cnn
from mentor.recipe import TrainSpec

CLASSES = ("cat", "dog", "eel")


def _folder(root, n=12, size=8, seed=0):
    """``n`` PNGs per class whose colour tells the class, some not ``size`` square (resized)."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(n):
            side = size if i % 3 else size + 4
            a = rng.integers(0, 90, (side, side, 3)).astype(np.uint8)
            a[..., c] += 150
            Image.fromarray(a).save(root / name / f"{i:02d}.png")
            pixels[f"{name}/{i:02d}.png"] = a
    return pixels


def test_rows_are_the_files_in_sorted_order_resized_and_standardized(tmp_path):
    pixels = _folder(tmp_path / "imgs")
    s = load(str(tmp_path / "imgs"), images={"image_size": 8, "workers": 0})
    assert s.input_shape == (3, 8, 8) and s.num_classes == 3
    assert s.describe().endswith("train 24 (24 labeled), val 6, test 6, 3 classes")
    every = np.concatenate([s.rows["train"], s.rows["val"], s.rows["test"]])
    assert sorted(every.tolist()) == list(range(36))
    names = sorted(pixels)
    i = int(s.rows["val"][0])  # row id i is the i-th file in sorted order
    got = s.val.x.take(torch.tensor([0]))[0].reshape(3, 8, 8)
    mean, std = s.mean.reshape(3, 8, 8), s.std.reshape(3, 8, 8)
    raw = got.numpy() * std + mean
    img = Image.fromarray(pixels[names[i]])
    if img.size != (8, 8):
        img = img.resize((8, 8), Image.BILINEAR)
    want = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255
    assert np.allclose(raw, want, atol=1e-5)
    assert int(s.val.y[0]) == CLASSES.index(names[i].split("/")[0])
    # the per-channel statistics are those of the training images
    files = ImageFiles([str(tmp_path / "imgs" / names[k]) for k in s.rows["train"]], (8, 8), 3)
    stack = torch.stack([files.pixels(k) for k in range(len(files))]).double() / 255
    assert np.allclose(s.mean[:64], stack[:, 0].mean().item(), atol=1e-5)
    assert np.allclose(s.std[64:128], stack[:, 1].std(unbiased=False).item(), atol=1e-5)


def test_an_unlabeled_folder_joins_train_without_labels(tmp_path):
    _folder(tmp_path / "imgs")
    (tmp_path / "pool").mkdir()
    for i in range(5):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / "pool" / f"{i}.png")
    s = image_folder_splits(tmp_path / "imgs", image_size=8, unlabeled=tmp_path / "pool",
                            workers=0)
    assert s.describe().endswith("train 29 (24 labeled, 5 unlabeled), val 6, test 6, "
                                 "3 classes")
    assert s.rows["train"][-5:].tolist() == [36, 37, 38, 39, 40]
    assert (s.train.y[-5:] == -1).all() and not s.train.labeled[-5:].any()


def _memory_twin(s):
    """The same splits with every input read into memory (a tensor per split)."""
    from dataclasses import replace

    from mentor.data import Split

    def held(split):
        x = split.x.take(torch.arange(len(split)))
        return Split(x, split.y, split.labeled)
    return replace(s, train=held(s.train), val=held(s.val), test=held(s.test))


def _fit(s, spec, **kw):
    plan = get_method("kd").plan()
    torch.manual_seed(0)
    teacher_net = cnn(s.input_shape, 3, channels=[4])
    from mentor.teachers import as_teacher
    torch.manual_seed(1)
    return plan.fit(cnn(s.input_shape, 3, channels=[4]), s.train, s.val, spec=spec, seed=3,
                    num_outputs=3, teacher=as_teacher(teacher_net, num_classes=3), input_shape=s.input_shape,
                    **kw)


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_run_on_the_folder_equals_the_run_on_its_pixels_in_memory(tmp_path):
    _folder(tmp_path / "imgs")
    s = image_folder_splits(tmp_path / "imgs", image_size=8, workers=2)
    spec = TrainSpec(epochs=2, batch_size=8, cache_teacher="always", select="best_val")
    folder, memory = _fit(s, spec), _fit(_memory_twin(s), spec)
    assert _same(folder.model, memory.model) and folder.history == memory.history


def test_a_run_on_the_folder_resumes_mid_epoch_bit_for_bit(tmp_path):
    _folder(tmp_path / "imgs")
    s = image_folder_splits(tmp_path / "imgs", image_size=8, workers=1)
    spec = TrainSpec(epochs=2, batch_size=8, schedule="cosine", select="best_val")
    full = _fit(s, spec)
    part = _fit(s, spec, checkpoint_dir=tmp_path / "ck", max_steps=4)
    assert not part.finished
    resumed = _fit(s, spec, checkpoint_dir=tmp_path / "ck", resume=True)
    assert resumed.finished and _same(resumed.model, full.model)
    assert resumed.history == full.history


@pytest.mark.parametrize("case, match", [
    ("missing", r"data.source: '.*nowhere' does not exist; expected a folder with one "
                r"sub-folder of images per class"),
    ("empty", r"data.source: '.*empty' has 0 class sub-folders; expected one sub-folder of "
              r"images per class, at least 2"),
    ("no-images", r"class folder '.*imgs/dog' has no image; expected .png, .jpg, .jpeg files "
                  r"in every class folder"),
    ("truncated", r"image '.*imgs/cat/03.png' cannot be read \(.*\); expected a complete PNG "
                  r"or JPEG file"),
    ("not-an-image", r"image '.*imgs/eel/00.png' cannot be read"),
    ("channels", r"data.channels is 2; expected 1 \(grayscale\) or 3 \(RGB\)"),
])
def test_bad_folders_and_files_are_refused_in_one_sentence(tmp_path, case, match):
    _folder(tmp_path / "imgs")
    root, opts = tmp_path / "imgs", {"workers": 0}
    if case == "missing":
        root = tmp_path / "nowhere"
    elif case == "empty":
        root = tmp_path / "empty"
        root.mkdir()
    elif case == "no-images":
        for f in (root / "dog").iterdir():
            f.unlink()
    elif case == "truncated":
        f = root / "cat" / "03.png"
        f.write_bytes(f.read_bytes()[:60])
    elif case == "not-an-image":
        (root / "eel" / "00.png").write_text("not a png")
    elif case == "channels":
        opts["channels"] = 2
    with pytest.raises(DataError, match=match) as e:
        image_folder_splits(root, image_size=8, **opts)
    assert "\n" not in str(e.value)


def test_table_options_on_an_image_folder_are_refused(tmp_path):
    _folder(tmp_path / "imgs")
    with pytest.raises(DataError, match=r"data.target is set but data.source .* is an image "
                       r"folder \(classes are its sub-folders\)"):
        load(str(tmp_path / "imgs"), target="label")
    with pytest.raises(DataError, match=r"data.image_size is set but data.source 'iris' is not "
                       r"an image folder"):
        load("iris", images={"image_size": 8})
