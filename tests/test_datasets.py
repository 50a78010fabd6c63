"""Real-data layouts on miniature trees made here: REDS (REDS4 split), Vimeo-90K, Vid4, folders, videos."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vsr.data.augment import augment_pair, paired_random_crop
from vsr.data.datamodule import VSRDataModule
from vsr.data.degradations import BicubicDegradation, BlurDegradation, RealisticDegradation
from vsr.data.folder import FolderClips
from vsr.data.reds import REDS, REDS4
from vsr.data.vid4 import Vid4
from vsr.data.video import VideoClips
from vsr.data.vimeo90k import Vimeo90K
from vsr.errors import UserError, find_user_error
from vsr.io.synthetic import write_test_video

BI4 = BicubicDegradation(4, "matlab")


def write_frames(folder: Path, count: int, size: int, seed: int = 0, names=None) -> list[np.ndarray]:
    """`count` smooth random PNG frames of `size`x`size`; returns them (RGB)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(count):
        small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        frame = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        name = names[t] if names else f"{t:08d}.png"
        cv2.imwrite(str(folder / name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        frames.append(frame)
    return frames


def stored_lr(hr_folder: Path, lr_folder: Path, scale: int = 4) -> None:
    """LR frames for every HR frame, made with MATLAB bicubic, with the same names."""
    lr_folder.mkdir(parents=True, exist_ok=True)
    for f in sorted(hr_folder.glob("*.png")):
        hr = torch.from_numpy(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)).permute(2, 0, 1)[None] / 255
        lr = BicubicDegradation(scale, "matlab")(hr.float())[0].permute(1, 2, 0).numpy()
        cv2.imwrite(str(lr_folder / f.name), cv2.cvtColor((lr * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))


def make_reds(root: Path, clips=("000", "001", "002", "011", "015", "020"), frames: int = 5, size: int = 64) -> Path:
    for i, clip in enumerate(clips):
        write_frames(root / "train_sharp" / clip, frames, size, seed=i)
        stored_lr(root / "train_sharp" / clip, root / "train_sharp_bicubic" / "X4" / clip)
    return root


def make_vimeo(root: Path, size: int = 32) -> Path:
    names = [f"im{i}.png" for i in range(1, 8)]
    for i, seq in enumerate(["00001/0001", "00001/0002", "00002/0001"]):
        write_frames(root / "sequences" / seq, 7, size, seed=i, names=names)
    (root / "sep_trainlist.txt").write_text("00001/0001\n00001/0002\n")
    (root / "sep_testlist.txt").write_text("00002/0001\n")
    return root


def make_vid4(root: Path, size: int = 32) -> Path:
    for i, clip in enumerate(["calendar", "city", "foliage", "walk"]):
        write_frames(root / "GT" / clip, 4, size, seed=i)
        stored_lr(root / "GT" / clip, root / "BIx4" / clip)
    return root


@pytest.fixture
def reds(tmp_path):
    return make_reds(tmp_path / "REDS")


# ---- REDS ---------------------------------------------------------------------------------------
def test_reds4_split_keeps_validation_clips_out_of_training(reds):
    train = REDS(str(reds), "train", 4, BI4, num_frames=3, patch_size=32, random=True)
    val = REDS(str(reds), "val", 4, BI4)
    assert [c.name for c in train.clips] == ["001", "002"]
    assert [c.name for c in val.clips] == list(REDS4)
    assert all(c.lr is not None for c in train.clips + val.clips)  # stored X4 frames are used
    item = train[0]
    assert item["lr"].shape == (3, 3, 8, 8) and item["hr"].shape == (3, 3, 32, 32)
    whole = val[1]
    assert whole["name"] == "011" and whole["lr"].shape == (5, 3, 16, 16) and whole["hr"].shape == (5, 3, 64, 64)


def test_official_val_folder_joins_training_under_its_own_names(reds):
    write_frames(reds / "val_sharp" / "000", 5, 64)
    train = REDS(str(reds), "train", 4, BI4, num_frames=3)
    assert [c.name for c in train.clips] == ["001", "002", "val_000"]
    assert train.clips[-1].lr is None  # no val_sharp_bicubic: made on the fly


def test_random_crops_stay_aligned_with_stored_lr(reds):
    """The LR crop must be the stored LR of exactly the HR crop: downscaling the HR crop with the
    same MATLAB kernel gives back the LR crop (up to the border taps that see outside the crop)."""
    train = REDS(str(reds), "train", 4, BI4, num_frames=2, patch_size=48, random=True, rotate=False,
                 flip=False, reverse=False)
    torch.manual_seed(0)
    for _ in range(5):
        item = train[0]
        remade = BI4(item["hr"])
        inner = (remade - item["lr"])[..., 2:-2, 2:-2].abs().max()
        assert inner < 2.5 / 255, inner  # a misaligned crop is off by tens of levels
        shifted = (BI4(item["hr"])[..., 2:-2, 3:-1] - item["lr"][..., 2:-2, 2:-2]).abs().max()
        assert shifted > 10 / 255


def test_augmentations_transform_lr_and_hr_together():
    rng = np.random.default_rng(0)
    hr = torch.rand(4, 3, 16, 16)
    lr = hr[..., ::4, ::4].clone()  # a pairing we can check after any transform
    seen = set()
    for _ in range(40):
        a_lr, a_hr = augment_pair(lr, hr, rng)
        assert torch.equal(a_hr[..., ::4, ::4], a_lr) or torch.equal(a_hr[..., 3::4, 3::4], a_lr) \
            or torch.equal(a_hr[..., ::4, 3::4], a_lr) or torch.equal(a_hr[..., 3::4, ::4], a_lr)
        seen.add((torch.equal(a_hr[0], hr[0]) or torch.equal(a_hr[0], hr[0].transpose(-1, -2))
                  or torch.equal(a_hr[0], hr[0].flip(-1)), torch.equal(a_hr, hr)))
    assert len(seen) > 1  # sometimes transformed, sometimes not
    _, crop = paired_random_crop(None, torch.rand(2, 3, 40, 36), 16, 4, rng)
    assert crop.shape == (2, 3, 16, 16)


def test_temporal_windows_are_random_and_in_range(reds):
    train = REDS(str(reds), "train", 4, BI4, num_frames=2, patch_size=32, random=True)
    torch.manual_seed(0)
    starts = {int(train[0]["name"].split("/")[1]) for _ in range(30)}
    assert starts == {0, 1, 2, 3}


@pytest.mark.parametrize("scale,degradation", [(2, BicubicDegradation(2)), (8, BicubicDegradation(8)),
                                               (4, BlurDegradation(4))])
def test_scales_and_protocols_without_stored_lr_degrade_on_the_fly(reds, scale, degradation):
    train = REDS(str(reds), "train", scale, degradation, num_frames=2, patch_size=32, random=True)
    assert all(c.lr is None for c in train.clips)  # X4 bicubic frames are not BD, nor x2/x8
    item = train[0]
    assert item["hr"].shape == (2, 3, 32, 32) and item["lr"].shape == (2, 3, 32 // scale, 32 // scale)
    assert torch.equal(item["lr"], (item["lr"] * 255).round() / 255)  # quantised like stored frames


def test_realistic_lr_is_reproducible_for_validation(reds):
    val = REDS(str(reds), "val", 4, RealisticDegradation(4, codec_prob=0), num_frames=2)
    assert torch.equal(val[0]["lr"], val[0]["lr"])


def test_lr_option(reds):
    with pytest.raises(UserError, match="data.lr=stored but .* has no LR frames"):
        REDS(str(reds), "val", 2, BicubicDegradation(2), lr="stored")
    assert all(c.lr is None for c in REDS(str(reds), "val", 4, BI4, lr="degrade").clips)


# ---- bad input: one clear line --------------------------------------------------------------------
def test_missing_root_names_path_and_layout(tmp_path):
    with pytest.raises(UserError, match=r"data.root=.*nope: folder not found; expected the REDS layout "
                                        r"ROOT/train_sharp/NNN/00000000.png") as err:
        REDS(str(tmp_path / "nope"), "train", 4, BI4)
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no train_sharp folder"):
        REDS(str(tmp_path / "empty"), "train", 4, BI4)
    with pytest.raises(UserError, match="validation clip\\(s\\) 011, 015 not in train_sharp"):
        REDS(str(make_reds(tmp_path / "r", clips=("000", "001", "020"), frames=2)), "val", 4, BI4)


def test_missing_frame_is_named(reds):
    (reds / "train_sharp" / "001" / "00000002.png").unlink()
    with pytest.raises(UserError, match=r"clip 001: frame 00000002.png is missing"):
        REDS(str(reds), "train", 4, BI4)
    (reds / "train_sharp_bicubic" / "X4" / "002" / "00000003.png").unlink()
    with pytest.raises(UserError, match=r"clip 002: LR frame 00000003 is missing in .*X4/002"):
        REDS(str(reds), "train", 4, BI4, val_clips=["000", "001", "011", "015", "020"])


def test_lr_hr_size_mismatch_names_clip_and_frame(reds):
    lr = reds / "train_sharp_bicubic" / "X4" / "001"
    for f in lr.glob("*.png"):
        cv2.imwrite(str(f), np.zeros((15, 16, 3), np.uint8))
    with pytest.raises(UserError, match=r"clip 001: LR frame 00000000.png is 16x15 but HR frame 00000000.png "
                                        r"is 64x64, not x4 of it"):
        REDS(str(reds), "train", 4, BI4)
    # a bad frame in the middle of a clip is caught when it is read, before it reaches a batch
    for f in lr.glob("*.png"):
        cv2.imwrite(str(f), np.zeros((16, 16, 3), np.uint8))
    cv2.imwrite(str(lr / "00000003.png"), np.zeros((8, 16, 3), np.uint8))
    train = REDS(str(reds), "train", 4, BI4, num_frames=5, val_clips=["000", "002", "011", "015", "020"])
    with pytest.raises(UserError, match=r"clip 001: frame 00000003.png is 16x8 but 00000000.png is 16x16"):
        train[0]


def test_unreadable_image_raises_or_is_skipped_and_counted(reds, caplog):
    bad = reds / "train_sharp" / "002" / "00000001.png"
    bad.write_bytes(b"not a png")
    train = REDS(str(reds), "train", 4, BI4, num_frames=5)
    with pytest.raises(UserError, match=r"00000001.png: unreadable image .* set data.on_error=skip"):
        train[1]
    skipping = REDS(str(reds), "train", 4, BI4, num_frames=5, on_error="skip")
    item = skipping[1]  # clip 002 is skipped: the next clip comes instead
    assert item["name"] == "001" and skipping.skipped == 1
    assert "data.on_error=skip: clip 002 skipped" in caplog.text
    bad_first = reds / "train_sharp" / "001" / "00000000.png"
    bad_first.write_bytes(b"")
    skipping = REDS(str(reds), "train", 4, BI4, on_error="skip")  # found by the header check at start
    assert [c.name for c in skipping.clips] == ["002"] and skipping.skipped == 1


def test_frames_smaller_than_patch(reds):
    with pytest.raises(UserError, match=r"data.patch_size=128 is larger than the 64x64 frames of clip 001; "
                                        r"use data.train.patch_size <= 64"):
        REDS(str(reds), "train", 4, BI4, patch_size=128, random=True)


def test_too_few_training_items_for_a_batch(reds):
    train = REDS(str(reds), "train", 4, BI4, num_frames=2)
    with pytest.raises(UserError, match="2 training items but data.batch_size=4"):
        VSRDataModule(train, train, batch_size=4)


# ---- Vimeo-90K, Vid4, folders, videos -------------------------------------------------------------
def test_vimeo90k_septuplets(tmp_path):
    root = make_vimeo(tmp_path / "vimeo")
    train = Vimeo90K(str(root), "train", 4, BI4, num_frames=5, patch_size=16, random=True)
    val = Vimeo90K(str(root), "val", 4, BI4)
    assert [c.name for c in train.clips] == ["00001/0001", "00001/0002"] and len(train.clips[0].hr) == 7
    assert val[0]["hr"].shape == (7, 3, 32, 32) and val[0]["lr"].shape == (7, 3, 8, 8)
    assert train[0]["lr"].shape == (5, 3, 4, 4)
    (root / "sequences" / "00002" / "0001" / "im4.png").unlink()
    with pytest.raises(UserError, match="clip 00002/0001: frame im4.png is missing"):
        Vimeo90K(str(root), "val", 4, BI4)[0]


def test_vid4_uses_bi_or_bd_folders(tmp_path):
    root = make_vid4(tmp_path / "Vid4")
    bi = Vid4(str(root), 4, BI4)
    assert [c.name for c in bi.clips] == ["calendar", "city", "foliage", "walk"]
    assert all(c.lr is not None for c in bi.clips)
    bd = Vid4(str(root), 4, BlurDegradation(4))
    assert all(c.lr is None for c in bd.clips)  # no BDx4 folder: BD made from GT
    stored_lr(root / "GT" / "city", root / "BDx4" / "city")
    assert [c.lr is not None for c in Vid4(str(root), 4, BlurDegradation(4)).clips] == [False, True, False, False]


def test_folder_hr_only_and_hr_plus_lr(tmp_path):
    for i, clip in enumerate(["a", "b", "c"]):
        write_frames(tmp_path / "plain" / clip, 3, 32, seed=i, names=[f"f{t}.jpg" for t in range(3)])
    train = FolderClips(str(tmp_path / "plain"), "train", 4, BI4, num_frames=2, patch_size=16, random=True)
    val = FolderClips(str(tmp_path / "plain"), "val", 4, BI4)
    assert [c.name for c in train.clips] == ["a", "b"] and [c.name for c in val.clips] == ["c"]
    assert val[0]["lr"].shape == (3, 3, 8, 8)
    for i, clip in enumerate(["x", "y"]):
        write_frames(tmp_path / "paired" / "HR" / clip, 3, 32, seed=i)
        stored_lr(tmp_path / "paired" / "HR" / clip, tmp_path / "paired" / "LRx4" / clip)
    paired = FolderClips(str(tmp_path / "paired"), "train", 4, BlurDegradation(4), val_clips=["y"])
    assert [c.name for c in paired.clips] == ["x"] and paired.clips[0].lr is not None  # the user's own LR
    write_frames(tmp_path / "single" / "only", 3, 32)
    with pytest.raises(UserError, match="has 1 clip folder\\(s\\); holding out num_val_clips=1"):
        FolderClips(str(tmp_path / "single"), "train", 4, BI4)


def test_video_training_windows_and_evaluation_clips(tmp_path):
    write_test_video(tmp_path / "a.mp4", num_frames=10, width=64, height=48, audio=False)
    write_test_video(tmp_path / "b.mp4", num_frames=6, width=64, height=48, audio=False)
    train = VideoClips(str(tmp_path / "*.mp4"), 4, BI4, num_frames=4, patch_size=32, random=True, num_clips=7)
    assert len(train) == 7
    torch.manual_seed(0)
    items = [train[i] for i in range(6)]
    assert all(it["lr"].shape == (4, 3, 8, 8) and it["hr"].shape == (4, 3, 32, 32) for it in items)
    assert len({it["name"] for it in items}) > 1
    val = VideoClips(str(tmp_path / "*.mp4"), 4, BI4)
    assert [v["hr"].shape[0] for v in val] == [10, 6]
    (tmp_path / "c.mp4").write_bytes(b"\x00" * 100)
    skipping = VideoClips(str(tmp_path / "*.mp4"), 4, BI4, on_error="skip")
    assert [skipping[i]["name"] for i in range(3)] == ["a", "b", "a"] and skipping.skipped == 1
    with pytest.raises(UserError, match="c.mp4: not a readable video"):
        VideoClips(str(tmp_path / "*.mp4"), 4, BI4)[2]
    with pytest.raises(UserError, match="data.patch_size=64 is larger than the 64x48 frames"):
        VideoClips(str(tmp_path / "a.mp4"), 4, BI4, num_frames=2, patch_size=64, random=True)[0]


def test_videos_shorter_than_the_training_window_are_one_error_when_the_dataset_is_built(tmp_path):
    write_test_video(tmp_path / "a.mp4", num_frames=10, width=64, height=48, audio=False)
    write_test_video(tmp_path / "b.mp4", num_frames=4, width=64, height=48, audio=False)
    # found at construction, not by a DataLoader worker; names the file, its frames and the real key
    with pytest.raises(UserError, match=rf"^data.train.num_frames=6 is longer than 1 of the videos: "
                                        rf"{tmp_path / 'b.mp4'} \(4 frames\); lower data.train.num_frames to 4 or less"):
        VideoClips(str(tmp_path / "*.mp4"), 4, BI4, num_frames=6, patch_size=32, random=True)
    with pytest.raises(UserError, match="data.train.num_frames=6 is more than data.max_frames=5"):
        VideoClips(str(tmp_path / "a.mp4"), 4, BI4, max_frames=5, num_frames=6, patch_size=32, random=True)
    assert VideoClips(str(tmp_path / "*.mp4"), 4, BI4, num_frames=4, patch_size=32, random=True)[0]["hr"].shape[0] == 4


def test_frame_clips_shorter_than_the_window_name_the_key_of_their_config(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    for i, (clip, count) in enumerate([("a", 3), ("b", 5), ("c", 2)]):
        write_frames(tmp_path / "clips" / clip, count, 32, seed=i)
    with pytest.raises(UserError, match=r"^data.train.num_frames=4 is longer than 1 of the training clips: a \(3 frames\)"):
        FolderClips(str(tmp_path / "clips"), "train", 4, BI4, num_frames=4, patch_size=16, random=True)
    with pytest.raises(UserError, match=r"^data.val.num_frames=4 is longer than 1 of the validation clips: c \(2 frames\)"):
        FolderClips(str(tmp_path / "clips"), "val", 4, BI4, num_frames=4)
    # data=photos_and_videos sets the window once, as data.num_frames, for its photos and its clips
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base=None):
        cfg = compose("train", overrides=["data=photos_and_videos", f"data.video_root={tmp_path}/clips",
                                          "data.photos=[astronaut]", "data.patch_size=32", "data.num_frames=4",
                                          "data.photo_max_side=128", "data.val_photos=[coffee]"])
    with pytest.raises(Exception) as raised:  # Hydra wraps it; train.py prints the UserError behind it
        instantiate(cfg.data)
    assert "2 of the training clips: a (3 frames), c (2 frames); lower data.train.num_frames (data.num_frames in " \
           "data=photos_and_videos" in str(find_user_error(raised.value))


# ---- end to end: train.py on each layout ----------------------------------------------------------
TINY = [
    "loss=gan", "model.num_feat=8", "model.num_block=1", "model.num_grow_ch=4", "model.flow_levels=2",
    "model.flow_channels=[8,4]", "discriminator.num_feat=8", "data.batch_size=1", "data.num_workers=0",
    "trainer.val_check_interval=2", "trainer.enable_progress_bar=false", "trainer.max_steps=2",
    "loss.perceptual.pretrained=false", "loss.perceptual.layer_weights={conv1_2:1.0}", "training.warmup_steps=1",
    "data.train.num_frames=3", "data.train.patch_size=32",
]


def train_log(run: Path) -> str:
    return (run / "train.log").read_text()


@pytest.mark.slow
def test_train_on_reds_validates_on_reds4_only(entry, tmp_path):
    root = make_reds(tmp_path / "REDS", frames=4, size=64)
    run = tmp_path / "run"
    result = entry("train.py", "model=recurrent_rrdb", "data=reds", f"data.root={root}", *TINY,
                   "data.val.num_frames=3", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    log = train_log(run)
    assert "data train: 2 items from REDS clips 001, 002" in log
    assert "data val: 4 items from REDS clips 000, 011, 015, 020" in log
    metrics = next((run / "logs").glob("version_*/metrics.csv")).read_text()
    assert "val/psnr_y" in metrics


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["vimeo90k", "vid4", "folder", "video"])
def test_train_on_each_layout(entry, tmp_path, layout):
    if layout == "vimeo90k":
        source, val = [f"data.root={make_vimeo(tmp_path / 'v')}"], "data.val.num_frames=3"
    elif layout == "vid4":
        source, val = [f"data.root={make_vid4(tmp_path / 'Vid4')}", "data.train.repeat=1"], "data.val.num_frames=3"
    elif layout == "folder":
        for i, clip in enumerate(["a", "b"]):
            write_frames(tmp_path / "clips" / clip, 3, 32, seed=i)
        source, val = [f"data.root={tmp_path / 'clips'}"], "data.val.num_frames=3"
    else:
        write_test_video(tmp_path / "a.mp4", num_frames=6, width=48, height=32, audio=False)
        source, val = [f"data.path={tmp_path / 'a.mp4'}", "data.train.num_clips=2"], "data.max_frames=3"
    run = tmp_path / "run"
    result = entry("train.py", "model=recurrent_rrdb", f"data={layout}", *source, *TINY, val,
                   f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "val/psnr_y" in next((run / "logs").glob("version_*/metrics.csv")).read_text()


@pytest.mark.slow
def test_train_on_a_missing_root_is_one_line(entry, tmp_path):
    result = entry("train.py", "data=reds", f"data.root={tmp_path / 'none'}", *TINY, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert "folder not found; expected the REDS layout" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_data_root_follows_the_environment_variable(monkeypatch, tmp_path):
    from hydra import compose, initialize_config_dir

    monkeypatch.setenv("VSR_DATA_ROOT", str(tmp_path))
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base=None):
        cfg = compose("train", overrides=["data=reds"])
        assert cfg.data.train.root == f"{tmp_path}/REDS"
    monkeypatch.delenv("VSR_DATA_ROOT")
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base=None):
        assert compose("train", overrides=["data=vid4"]).data.val.root == "datasets/Vid4"


# ---- datasets/prepare.py ------------------------------------------------------------------------------
def load_prepare():
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare", Path(__file__).resolve().parents[1] / "datasets/prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_checks_a_layout_and_stores_lr_the_datasets_then_use(tmp_path, capsys):
    prepare = load_prepare()
    root = make_vid4(tmp_path / "Vid4")
    assert prepare.main(["check", "vid4", str(root), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 clips, 16 HR frames" in out and "HR sizes: 32x32 (4 clips)" in out and "BI x4 in BIx4" in out
    assert prepare.main(["lr", "vid4", str(root), "--scales", "2", "--protocol", "BD", "--workers", "1"]) == 0
    bd2 = Vid4(str(root), 2, BlurDegradation(2))
    assert all(c.lr is not None for c in bd2.clips)
    item = bd2[0]
    # the stored frames are what the on-the-fly degradation makes, rounded to uint8
    assert (item["lr"] - BlurDegradation(2)(item["hr"])).abs().max() <= 0.5 / 255 + 1e-6
    (root / "GT" / "city" / "00000001.png").unlink()
    assert prepare.main(["check", "vid4", str(root), "--workers", "1"]) == 1
    assert "clip city: frame 00000001.png is missing" in capsys.readouterr().out


def test_prepare_frames_turns_videos_into_a_folder_dataset(tmp_path, capsys, monkeypatch):
    from vsr.data.degradations import imresize
    from vsr.io.video import read_frames

    prepare = load_prepare()
    write_test_video(tmp_path / "walk.mp4", num_frames=9, width=64, height=48, audio=False)
    write_test_video(tmp_path / "pan.mp4", num_frames=5, width=96, height=64, audio=False)
    root = tmp_path / "folder"
    assert prepare.main(["frames", str(tmp_path / "*.mp4"), str(root), "--downscale", "2"]) == 0
    assert "walk: 9 frames of 32x24" in capsys.readouterr().out
    assert len(list((root / "walk").glob("*.png"))) == 9 and len(list((root / "pan").glob("*.png"))) == 5
    # each PNG is the decoded frame shrunk by MATLAB bicubic, rounded to uint8
    decoded = torch.from_numpy(read_frames(tmp_path / "walk.mp4")[4]).permute(2, 0, 1).float() / 255
    stored = cv2.cvtColor(cv2.imread(str(root / "walk" / "00004.png")), cv2.COLOR_BGR2RGB)
    expected = (imresize(decoded, (24, 32)).permute(1, 2, 0) * 255).round().clamp(0, 255).numpy()
    assert np.abs(stored.astype(np.float64) - expected).max() <= 1
    # a second run keeps what exists; the folder trains as data=folder
    assert prepare.main(["frames", str(tmp_path / "walk.mp4"), str(root)]) == 0
    assert "exists, kept" in capsys.readouterr().out
    clips = FolderClips(str(root), split="train", num_val_clips=0, scale=4, degradation=BicubicDegradation(4),
                        num_frames=4, patch_size=16, random=True)
    assert sorted(c.name for c in clips.clips) == ["pan", "walk"]
    assert clips[0]["hr"].shape == (4, 3, 16, 16) and clips[0]["lr"].shape == (4, 3, 4, 4)
    # an interrupted run leaves no clip folder: the next run decodes the clip again instead of keeping a part
    import vsr.io.video as video_io

    original = video_io.iter_frames

    def two_frames_then_ctrl_c(path, max_frames=None):
        yield from list(original(path, 2))
        raise KeyboardInterrupt

    monkeypatch.setattr(video_io, "iter_frames", two_frames_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        prepare.main(["frames", str(tmp_path / "walk.mp4"), str(tmp_path / "cut")])
    assert not (tmp_path / "cut" / "walk").exists()
    monkeypatch.undo()
    assert prepare.main(["frames", str(tmp_path / "walk.mp4"), str(tmp_path / "cut")]) == 0
    assert len(list((tmp_path / "cut" / "walk").glob("*.png"))) == 9
    (tmp_path / "empty.mp4").write_bytes(b"not a video")
    assert prepare.main(["frames", str(tmp_path / "empty.mp4"), str(tmp_path / "out2")]) == 2
    assert "empty.mp4" in capsys.readouterr().err and not list((tmp_path / "out2").glob("*/*.png"))


def test_photos_and_videos_mixes_both_sources_in_one_batch_shape(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    prepare = load_prepare()
    write_test_video(tmp_path / "clip.mp4", num_frames=8, width=64, height=48, audio=False)
    assert prepare.main(["frames", str(tmp_path / "clip.mp4"), str(tmp_path / "videos")]) == 0
    with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "conf"), version_base=None):
        cfg = compose("train", overrides=["data=photos_and_videos", f"data.video_root={tmp_path}/videos",
                                          "data.photos=[astronaut]", "data.patch_size=32", "data.num_frames=3",
                                          "data.photo_max_side=128", "data.val_photos=[coffee]", "data.val.patch_size=32"])
    data = instantiate(cfg.data)
    photos, videos = data.train_set.datasets
    assert len(data.train_set) == len(photos) + len(videos) == 2000 + 500
    names = {data.train_set[i]["name"].split("/")[0] for i in (0, 1999, 2000, 2499)}
    assert names == {"astronaut_0000", "astronaut_1999", "clip"}
    batch = next(iter(data.train_dataloader()))
    assert batch["hr"].shape == (4, 3, 3, 32, 32) and batch["lr"].shape == (4, 3, 3, 8, 8)


def test_the_data_log_names_every_part_of_a_mixed_training_set(tmp_path):
    from torch.utils.data import ConcatDataset

    from vsr.data.datamodule import describe
    from vsr.data.sample import SampleClips

    photos = SampleClips(photos=["astronaut"], patch_size=32, photo_max_side=128, num_clips=7)
    clips = FolderClips(str(make_vid4(tmp_path / "Vid4") / "GT"), split="train", num_val_clips=0,
                        degradation=BicubicDegradation(4), num_frames=2, random=True, repeat=3)
    text = describe(ConcatDataset([photos, clips]))
    assert text == "7 items from SampleClips clips astronaut + 12 items from FolderClips clips calendar, city, foliage, walk"
