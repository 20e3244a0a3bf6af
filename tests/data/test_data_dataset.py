"""CSV discovery, record validation and the image-text dataset on real data."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.io
import torch

from napari_amvlm.data.dataset import ImageTextDataset, collate, find_csv, read_records


def _write_folder(
    root: Path, rows: list[str], csv_name: str = "text.csv", header: str = "image,mask,text"
) -> Path:
    """A small dataset folder with two real-format 8-bit images and masks plus the given CSV rows."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(2):
        skimage.io.imsave(
            root / "images" / f"a{i}.png", np.full((20, 20), 60 * (i + 1), np.uint8), check_contrast=False
        )
        m = np.zeros((20, 20), np.uint8)
        m[:, :10] = 255
        skimage.io.imsave(root / "masks" / f"a{i}.png", m, check_contrast=False)
    (root / csv_name).write_text("\n".join([header, *rows]) + "\n")
    return root


def _check_item(item, size):
    assert item["image"].shape == (3, size, size) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["mask"].shape == (1, size, size) and item["mask"].dtype == torch.float32
    assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
    assert isinstance(item["text"], str) and item["text"]


def test_qata_layout_loads(shared_data):
    root = shared_data / "qata_cov19" / "train"
    assert find_csv(root).name == "text.csv"
    ds = ImageTextDataset(root, size=224, require_masks=True)
    assert len(ds) == 3500
    item = ds[0]
    _check_item(item, 224)
    assert item["has_mask"] and item["name"] == ds.records[0].image.stem
    assert item["text"] == ds.records[0].text and "lung" in item["text"]
    assert float(item["image"].std()) > 0.05  # a real X-ray, not a blank


def test_monuseg_layout_loads(shared_data):
    root = shared_data / "monuseg" / "Train_Folder"
    assert find_csv(root).name == "train_text.csv"
    assert find_csv(shared_data / "monuseg" / "Val_Folder").name == "val_text.csv"
    ds = ImageTextDataset(root, size=64, require_masks=True)
    assert len(ds) == 24
    item = ds[3]
    _check_item(item, 64)
    assert 0.05 < float(item["mask"].mean()) < 0.9 and "nuclei" in item["text"]


def test_several_roots_concatenate(shared_data):
    ds = ImageTextDataset(
        [shared_data / "monuseg" / "Train_Folder", shared_data / "monuseg" / "Val_Folder"], size=32
    )
    assert len(ds) == 30
    assert ds[29]["index"] == 29 and ds[29]["name"] == ds.records[29].image.stem


def test_sample_data_both_layouts_load(sample_data):
    qata = ImageTextDataset(sample_data / "qata", size=224, require_masks=True)
    monuseg = ImageTextDataset(sample_data / "monuseg", size=96, require_masks=True)
    assert len(qata) == 10 and len(monuseg) == 2
    batch = collate([qata[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 224, 224) and batch["mask"].shape == (4, 1, 224, 224)
    assert batch["has_mask"].tolist() == [True] * 4 and batch["index"].tolist() == [0, 1, 2, 3]
    assert batch["text"] == [qata.records[i].text for i in range(4)] and len(batch["name"]) == 4
    _check_item(monuseg[1], 96)


def test_cache_gives_same_items_and_stores_uint8(sample_data):
    cached = ImageTextDataset(sample_data / "qata", size=64, cache=True)
    plain = ImageTextDataset(sample_data / "qata", size=64, cache=False)
    a, b, c = cached[2], cached[2], plain[2]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["image"], c["image"])
    assert torch.equal(a["mask"], c["mask"])
    assert cached._images[2].dtype == np.uint8 and plain._images[2] is None
    assert cached._images[2].shape == (1, 64, 64)  # gray X-rays kept as one channel in memory
    assert torch.equal(a["image"][0], a["image"][2])


def test_dataloader_with_pair_transform_on_real_pairs(sample_data):
    from torch.utils.data import DataLoader

    from napari_amvlm.data.transforms import PairTransform

    flip = PairTransform(hflip_p=1.0, rotate_deg=0.0, crop_scale=(1.0, 1.0), jitter=0.0, noise_std=0.0)
    plain = ImageTextDataset(sample_data / "qata", size=64, require_masks=True)
    flipped = ImageTextDataset(sample_data / "qata", size=64, require_masks=True, transform=flip)
    batch = next(iter(DataLoader(flipped, batch_size=10, collate_fn=collate)))
    for i, text in enumerate(batch["text"]):
        original = plain.records[i].text
        assert ("left" in text) == ("right" in original) and ("right" in text) == ("left" in original)
        assert torch.equal(batch["mask"][i], plain[i]["mask"].flip(-1))


def test_missing_image_names_row(tmp_path):
    root = _write_folder(
        tmp_path / "d", ["images/a0.png,masks/a0.png,left lung", "images/gone.png,,right lung"]
    )
    with pytest.raises(ValueError, match=r"row 2 \(line 3, image 'images/gone.png'\).*not found"):
        read_records(root)


def test_missing_mask_names_row(tmp_path):
    root = _write_folder(tmp_path / "d", ["images/a0.png,masks/nomask.png,left lung"])
    with pytest.raises(ValueError, match=r"row 1 .*a0.png.*mask file not found"):
        read_records(root)


def test_empty_text_names_row(tmp_path):
    root = _write_folder(
        tmp_path / "d", ["images/a0.png,masks/a0.png,left lung", 'images/a1.png,masks/a1.png,"   "']
    )
    with pytest.raises(ValueError, match=r"row 2 \(line 3, image 'images/a1.png'\): empty text"):
        read_records(root)


def test_empty_mask_column_allowed_unless_required(tmp_path):
    root = _write_folder(tmp_path / "d", ["images/a0.png,,upper left lung", "images/a1.png,masks/a1.png,x"])
    records = read_records(root)
    assert records[0].mask is None and records[1].mask == root / "masks" / "a1.png"
    ds = ImageTextDataset(root, size=16)
    assert ds[0]["has_mask"] is False and float(ds[0]["mask"].sum()) == 0.0
    assert ds[1]["has_mask"] is True and float(ds[1]["mask"][0, :, :8].mean()) == 1.0
    with pytest.raises(ValueError, match=r"row 1 .*masks are required"):
        read_records(root, require_masks=True)


def test_find_csv_split_and_lone_csv_and_errors(tmp_path):
    root = _write_folder(tmp_path / "Val_Folder", ["images/a0.png,masks/a0.png,t"], csv_name="val_text.csv")
    shutil.copy(root / "val_text.csv", root / "train_text.csv")
    assert find_csv(root).name == "val_text.csv"  # several splits: the one named like the folder
    lone = _write_folder(tmp_path / "lone", ["images/a0.png,masks/a0.png,t"], csv_name="pairs.csv")
    (lone / "other.csv").write_text("a,b\n1,2\n")  # CSV without the columns is ignored
    assert find_csv(lone) == lone / "pairs.csv"
    bad = _write_folder(tmp_path / "bad", ["images/a0.png,t"], csv_name="pairs.csv", header="image,text")
    with pytest.raises(ValueError, match="cannot choose the dataset CSV.*pairs.csv"):
        find_csv(bad)
    with pytest.raises(FileNotFoundError, match="missing"):
        find_csv(tmp_path / "missing")


def test_transform_applied_to_triple(sample_data):
    def transform(image, mask, text):
        return image.flip(-1), mask.flip(-1), text.upper()

    ds = ImageTextDataset(sample_data / "qata", size=32, transform=transform)
    plain = ImageTextDataset(sample_data / "qata", size=32)
    assert torch.equal(ds[0]["image"], plain[0]["image"].flip(-1))
    assert torch.equal(ds[0]["mask"], plain[0]["mask"].flip(-1))
    assert ds[0]["text"] == plain[0]["text"].upper()
