"""The web page (app.py): jobs through vsr.inference with progress and cancel, and the whole flow in a
real browser (Debian's chromium, driven by Selenium)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vsr.apps import web
from vsr.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from test_upscale import TINY_RRDB, tiny

    from vsr.export import export

    folder = tmp_path_factory.mktemp("weights")
    export(tiny(TINY_RRDB), TINY_RRDB, folder)
    return folder


def test_page_targets_and_filters_become_upscale_options(tmp_path):
    base = web.base_config(["device=cpu"])
    video = web.job_config(base, tmp_path / "walk.mov", tmp_path, "fast", "1080p", 0.3, 0.5, True, True)
    assert (video.output, video.fit, video.scale, video.shipped) == (str(tmp_path / "walk_1080p.mp4"), "1080p", None,
                                                                     "fast")
    assert (video.denoise, video.sharpen, video.color_match, video.interpolate, video.device) == (0.3, 0.5, True, 2,
                                                                                                  "cpu")
    photo = web.job_config(base, tmp_path / "cat.jpg", tmp_path, "sharp", "x2", 0, 0, False, False)
    assert (photo.output, photo.scale, photo.fit, photo.interpolate) == (str(tmp_path / "cat_x2.png"), 2, None, 1)
    sharp = web.job_config(base, tmp_path / "walk.mov", tmp_path, "sharp", "x4", "auto", "0.25", False, False)
    assert (sharp.denoise, sharp.sharpen) == ("auto", 0.25)  # the page's dropdowns give strings; auto: the model's
    with pytest.raises(UserError, match="choose a preset"):
        web.job_config(base, tmp_path / "a.mp4", tmp_path, "faces", "x4", 0, 0, False, False)


@pytest.mark.parametrize("option,words", [("denoize=1", "denoize=1: no such option; did you mean denoise?"),
                                          ("output=x.mp4", "the page sets input, output and overwrite")])
def test_page_options_are_refused_in_one_line_before_serving(option, words):
    proc = subprocess.run([sys.executable, str(ROOT / "app.py"), option], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and words in proc.stderr, proc.stderr


def job(tmp_path, weights, frames=12):
    from vsr.io.synthetic import write_test_video

    (tmp_path / "upload").mkdir()
    clip = write_test_video(tmp_path / "upload" / "clip.mp4", num_frames=frames)
    folder, source = web.new_job_folder(tmp_path / "jobs", str(clip))
    base = web.base_config([f"weights={weights}", "device=cpu", "runtime=eager", "progress=false", "chunk=4"])
    return folder, source, web.job_config(base, source, folder, "default", "x2", 0, 0, False, False)


def test_a_job_reports_progress_and_its_result(tmp_path, weights):
    folder, source, cfg = job(tmp_path, weights)
    seen, state = [], web.JobState()
    original = web.JobState.__setattr__
    web.JobState.__setattr__ = lambda self, k, v: (k == "fraction" and seen.append(v), original(self, k, v))[1]
    try:
        summary = web.run_job(cfg, state)
    finally:
        web.JobState.__setattr__ = original
    assert summary["frames"] == 12 and Path(summary["output"]).parent == folder
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(set(seen)) > 3  # moved frame by frame, never back
    assert "12/12 frames" in state.status and "frames/s" in state.status
    before, after = web.before_after(source, Path(summary["output"]))
    assert before.shape == after.shape == (96, 128, 3)


def test_a_cancelled_job_stops_at_the_next_frame_and_leaves_no_output(tmp_path, weights):
    folder, source, cfg = job(tmp_path, weights, frames=40)
    state = web.JobState()
    state.cancel.set()
    with pytest.raises(SystemExit) as stop:
        web.run_job(cfg, state)
    assert stop.value.code == 130
    assert sorted(p.name for p in folder.iterdir()) == ["clip.mp4"]  # the upload only: no output, no partial file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chrome():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"waited {seconds} s for {what}")


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
                    reason="needs Debian's chromium and chromium-driver (make test installs them when run as root)")
def test_the_page_upscales_an_upload_in_a_real_browser(tmp_path):
    """With the shipped presets: upload a clip with sound, run, wait, download: the file has every frame,
    the size asked for and the audio; a file that is not a video gets upscale.py's one-line error; a
    long job cancelled while it runs leaves nothing; nothing is written outside --jobs."""
    from selenium.webdriver.common.by import By

    from vsr.io.synthetic import write_test_video
    from vsr.io.video import probe

    clip = write_test_video(tmp_path / "clip.mp4", num_frames=12, width=64, height=48)
    long_clip = write_test_video(tmp_path / "long.mp4", num_frames=400, width=64, height=48)
    (tmp_path / "notes.mp4").write_text("not a video")
    cwd, jobs, port = tmp_path / "cwd", tmp_path / "jobs", free_port()
    cwd.mkdir()
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), f"--port={port}", f"--jobs={jobs}",
                               "device=cpu", "runtime=eager"],
                              cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    browser = None
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url) or server.poll() is not None, 120, "the server to start")
        assert server.poll() is None, server.stdout.read()
        browser = chrome()
        browser.get(url)
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#upload input[type=file]"), 60, "the page")

        upload(browser, clip)
        choose(browser, "fast")
        choose(browser, "x2")
        browser.find_element(By.ID, "start").click()
        link = wait_for(lambda: [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#result a")
                                 if a.get_attribute("href")], 180, "the download link")[0]
        assert status(browser).startswith("Done: 12 frames 64x48 -> 128x96"), status(browser)
        downloaded = tmp_path / "downloaded.mp4"
        downloaded.write_bytes(urllib.request.urlopen(link, timeout=30).read())
        info = probe(downloaded)
        assert (info.num_frames, info.width, info.height, info.has_audio) == (12, 128, 96, True)

        upload(browser, tmp_path / "notes.mp4")
        browser.find_element(By.ID, "start").click()
        wait_for(lambda: "notes.mp4: not a readable video" in browser.find_element(By.TAG_NAME, "body").text, 60,
                 "the error")

        upload(browser, long_clip)
        choose(browser, "default")
        browser.find_element(By.ID, "start").click()
        wait_for(lambda: "frames" in status(browser) and "upscale:" in status(browser), 120, "the job to start")
        browser.find_element(By.ID, "cancel").click()
        wait_for(lambda: status(browser) == "Cancelled: nothing was written.", 90, "the cancel")
        assert list(cwd.iterdir()) == []
        # the first job's folder (its upload and result); the failed and the cancelled ones are gone
        kept = [d for d in jobs.iterdir() if d.name != "uploads"]
        assert len(kept) == 1 and sorted(f.name for f in kept[0].iterdir()) == ["clip.mp4", "clip_x2.mp4"]
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        server.wait(30)


def upload(browser, file: Path) -> None:
    from selenium.webdriver.common.by import By

    for clear in browser.find_elements(By.CSS_SELECTOR, "#upload button[aria-label='Clear']"):
        clear.click()
    browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(file))
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, f"#upload td.filename[aria-label='{file.name}']"), 30,
             f"the upload of {file.name}")


def choose(browser, label: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.XPATH, f"//label[normalize-space(.)='{label}']").click()


def status(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, "#status textarea").get_attribute("value")


def _answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=5).status == 200
    except OSError:
        return False
