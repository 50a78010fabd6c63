"""upscale.py engine=ray on a local two-worker Ray cluster: files and parts of long videos as tasks, the
joined output equal to a one-process run, failures reported per file, finished work skipped."""

import numpy as np
import pytest

from vsr.errors import UserError
from vsr.inference import run
from vsr.inference.resume import segments_folder
from vsr.io.synthetic import write_test_video
from vsr.io.video import iter_frames, probe, scan_frames

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 2**20)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from test_upscale import TINY_RECURRENT, tiny

    from vsr.export import export

    folder = tmp_path_factory.mktemp("weights")
    export(tiny(TINY_RECURRENT), TINY_RECURRENT, folder)
    return folder


def options(weights, **more) -> dict:
    # crf=0: lossless, so equal frames decode equal whatever the part boundaries
    return {"weights": str(weights), "chunk": 4, "overlap": 2, "runtime": "eager", "progress": False, "crf": 0,
            "segment": 8, **more}


def same_video(a, b) -> bool:
    x, y = list(iter_frames(a)), list(iter_frames(b))
    return (len(x) == len(y) and all(np.array_equal(p, q) for p, q in zip(x, y))
            and scan_frames(a).times == scan_frames(b).times and probe(b).has_audio)


def test_a_folder_on_ray_equals_a_one_process_run_and_reports_each_file(cluster, weights, tmp_path, capsys):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    write_test_video(source / "short.mp4", num_frames=10)
    write_test_video(source / "sub" / "long.mp4", num_frames=50)
    (source / "broken.mp4").write_text("not a video")
    with pytest.raises(UserError, match="1 of 3 files failed"):
        run(options(weights, input=str(source), output=str(tmp_path / "one")))
    capsys.readouterr()
    with pytest.raises(UserError, match="1 of 3 files failed"):
        run(options(weights, input=str(source), output=str(tmp_path / "ray"), engine="ray"))
    said = capsys.readouterr()
    assert "ray: 7 tasks for 3 files on 2 CPUs" in said.err  # short: one task; long: 6 parts; broken: refused when planned
    rows = {row.split("|")[1].strip(): row for row in said.out.splitlines() if row.startswith("| ")}
    assert "not a readable video" in rows["broken.mp4"] and "| 50 |" in rows["sub/long.mp4"]
    for name in ("short.mp4", "sub/long.mp4"):
        assert same_video(tmp_path / "one" / name, tmp_path / "ray" / name), name
    assert not segments_folder(tmp_path / "ray" / "sub" / "long.mp4").exists()
    with pytest.raises(UserError, match="1 of 3 files failed"):  # a re-run tries only the broken file again
        run(options(weights, input=str(source), output=str(tmp_path / "ray"), engine="ray"))
    said = capsys.readouterr()
    assert "ray: 0 tasks for 3 files" in said.err and said.out.count("| done earlier |") == 2


def test_parts_finished_by_an_earlier_run_are_not_computed_again(cluster, weights, tmp_path, capsys):
    from vsr.inference.ray_engine import plan_parts, upscale_part
    from vsr.options import UpscaleOptions
    from vsr.options import options as typed

    clip = write_test_video(tmp_path / "long.mp4", num_frames=50)
    whole = tmp_path / "whole.mp4"
    run(options(weights, input=str(clip), output=str(whole)))
    out = tmp_path / "out.mp4"
    cfg = typed(UpscaleOptions, options(weights, input=str(clip), output=str(out)))
    parts = plan_parts(cfg, clip, out, 50, (64, 48))
    for part in parts[:3]:  # what a run stopped after three parts left
        upscale_part(cfg, part)
    capsys.readouterr()
    run(options(weights, input=str(clip), output=str(out), engine="ray"))
    assert f"ray: {len(parts) - 3} tasks for 1 files" in capsys.readouterr().err
    assert same_video(whole, out)


def test_ray_refusals_are_one_line(weights, tmp_path):
    with pytest.raises(UserError, match=r"engine=cluster is not supported; choose one of: local, ray"):
        run(options(weights, input=str(tmp_path / "x.mp4"), output=str(tmp_path / "y.mp4"), engine="cluster"))
    with pytest.raises(UserError, match="workers=0 must be an integer >= 1"):
        write_test_video(tmp_path / "x.mp4", num_frames=4)
        run(options(weights, input=str(tmp_path / "x.mp4"), output=str(tmp_path / "y.mp4"), engine="ray", workers=0))
