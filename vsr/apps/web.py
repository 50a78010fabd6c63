"""The web page: python app.py [--host 127.0.0.1] [--port 7860] [--jobs DIR] [--share] [KEY=VALUE ...]

Upload a video or a photo, choose a preset, a target and the filters, watch the progress, compare one
frame before and after, download the result with its audio. Every job is `vsr.inference.run`, the
pipeline upscale.py runs (KEY=VALUE are upscale.py options applied to every job, e.g. device=cpu);
jobs run one at a time, each in its own folder under --jobs, and Gradio keeps its uploads there too.
"""

import argparse
import os
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from vsr.errors import UserError, one_line_errors

PRESETS = {  # what footage each shipped preset suits (vsr/inference/shipped.py says how it was measured)
    "default": "Trained for compressed video: phone, streamed and messaged clips (the best on H.264 input).",
    "clean": "Trained on clean photographs, as quick as the default: clean sources such as camera originals and screen captures.",
    "fast": "A smaller network trained like the default: several times faster, less detail. For long videos and previews.",
    "sharp": "GAN-trained recurrent model with a temporal filter: more texture and detail, lower fidelity; slower.",
}
TARGETS = {"x2": {"scale": 2}, "x4": {"scale": 4}, "1080p": {"fit": "1080p"}, "1440p": {"fit": "1440p"},
           "4K": {"fit": "4k"}}
POLL_SECONDS = 0.5


@dataclass
class JobState:
    """What the page shows of a running job; `cancel` stops it at the next frame, then `stopped` is set."""

    status: str = "starting"
    fraction: float = 0.0
    cancel: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)


def parse_args(argv: list[str]):
    parser = argparse.ArgumentParser(prog="app.py", description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--jobs", default="vsrlab-jobs", help="folder for uploads and results, one folder a job")
    parser.add_argument("--share", action="store_true", help="also publish a temporary public link (Gradio's)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="upscale.py options for every job")
    return parser.parse_args(argv)


def base_config(overrides: list[str]):
    """upscale.py's config with `overrides`, refused in one line as upscale.py refuses them."""
    from hydra import compose, initialize_config_dir

    from vsr.overrides import CONF, check_overrides

    fixed = [o for o in overrides if o.split("=", 1)[0].lstrip("+") in ("input", "output", "overwrite")]
    if fixed:
        raise UserError(f"{fixed[0]}: the page sets input, output and overwrite for each job; drop it")
    console = Path(sys.argv[0]).name == "vsrlab-web"  # the refusal names the help that lists the options
    check_overrides("upscale", ["vsrlab-upscale" if console else "upscale.py", *overrides])
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("upscale", overrides=overrides)
    from vsr.inference.upscaler import pick_device, pick_precision

    pick_precision(cfg.precision, pick_device(cfg.device))  # a missing GPU is said now, not at the first job
    return cfg


def job_config(base, source: Path, folder: Path, preset: str, target: str, denoise: float | str, sharpen: float | str,
               color_match: bool, interpolate: bool):
    """The config of one job: `source` upscaled into `folder` (an image stays an image)."""
    from vsr.inference.stills import is_image
    from vsr.options import updated

    if preset not in PRESETS or target not in TARGETS:
        raise UserError(f"choose a preset ({', '.join(PRESETS)}) and a target ({', '.join(TARGETS)})")
    suffix = ".png" if is_image(str(source)) else ".mp4"
    output = folder / f"{source.stem}_{target.lower()}{suffix}"
    job = {"input": str(source), "output": str(output), "shipped": preset,
           "denoise": denoise if denoise == "auto" else float(denoise),
           "sharpen": sharpen if sharpen == "auto" else float(sharpen), "color_match": bool(color_match), "interpolate": 2 if interpolate else 1,
           **TARGETS[target]}
    if base.weights:
        job.pop("shipped")
    return updated(base, **job)


def new_job_folder(jobs: Path, upload: str) -> tuple[Path, Path]:
    """A fresh folder under `jobs` holding the upload (linked, not copied, where the file system allows)."""
    folder = jobs / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    source = folder / Path(upload).name
    try:
        os.link(upload, source)
    except OSError:
        shutil.copyfile(upload, source)
    return folder, source


def before_after(source: Path, output: Path):
    """The middle frame of the input (bicubic to the output's size) and of the output, as RGB arrays."""
    from itertools import islice

    import numpy as np
    from PIL import Image

    from vsr.inference.stills import is_image
    from vsr.io.video import iter_frames, probe

    if is_image(str(source)):
        before, after = np.asarray(Image.open(source).convert("RGB")), np.asarray(Image.open(output).convert("RGB"))
    else:  # decoded one frame at a time up to the middle: constant memory for a long video
        inputs = probe(source).num_frames
        factor = max(1, probe(output).num_frames // inputs)  # interpolate=N: output frame N*k is input frame k
        before = next(islice(iter_frames(source), inputs // 2, None))
        after = next(islice(iter_frames(output), factor * (inputs // 2), None))
    size = (after.shape[1], after.shape[0])
    return np.asarray(Image.fromarray(before).resize(size, Image.BICUBIC)), after


def run_job(cfg, state: JobState) -> dict:
    """`vsr.inference.run(cfg)` with its progress in `state`. Once `state.cancel` is set it raises
    KeyboardInterrupt, or SystemExit(130) from a video job, at the next frame, leaving no output."""
    from vsr.inference import run
    from vsr.inference.progress import observed

    def listen(progress) -> None:
        if state.cancel.is_set():
            raise KeyboardInterrupt
        state.fraction = progress.done / max(1, progress.total)
        state.status = progress.last_step if progress.rate is None and progress.last_step else progress.status()

    with observed(listen):
        return run(cfg)


def build_page(base, jobs: Path):
    import gradio as gr

    running: dict[str, JobState] = {}  # by browser session: what its Cancel button stops

    def upscale(upload, preset, target, denoise, sharpen, color_match, interpolate, request: gr.Request,
                progress=gr.Progress()):  # noqa: B008 (Gradio's way to ask for a progress bar)
        if not upload:
            raise gr.Error("Choose a video or a photo to upload first.")
        folder, source = new_job_folder(jobs, upload)
        try:
            cfg = job_config(base, source, folder, preset, target, denoise, sharpen, color_match, interpolate)
        except UserError as err:
            shutil.rmtree(folder, ignore_errors=True)
            raise gr.Error(str(err), duration=None) from None
        state, result = JobState(), {}
        running[request.session_hash] = state

        def work() -> None:
            try:
                result["summary"] = run_job(cfg, state)
            except UserError as err:
                result["error"] = str(err)
            except (SystemExit, KeyboardInterrupt):  # a video job turns the cancel into SystemExit(130)
                result["cancelled"] = True
            except Exception as err:  # shown on the page instead of a silent stop; the server goes on
                result["error"] = f"{type(err).__name__}: {err}"
            finally:
                state.stopped.set()

        worker = threading.Thread(target=work, name=f"job {folder.name}", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                progress(state.fraction, desc=state.status)
                yield f"Working: {state.status}", None, None
                worker.join(POLL_SECONDS)
        finally:  # the page went away or the event was cancelled: stop the job too
            state.cancel.set()
            worker.join()
            running.pop(request.session_hash, None)
        if "error" in result or result.get("cancelled"):
            shutil.rmtree(folder, ignore_errors=True)  # nothing to keep: the page names the upload, not the folder
        if "error" in result:
            raise gr.Error(result["error"].replace(str(source), source.name), duration=None)  # stays until closed
        if result.get("cancelled"):
            yield "Cancelled: nothing was written.", None, None
            return
        summary = result["summary"]
        output = Path(summary["output"])
        yield done_text(summary), str(output), before_after(source, output)

    def cancel(request: gr.Request) -> str:
        state = running.get(request.session_hash)
        if state is None:
            return "Nothing is running."
        state.cancel.set()
        state.stopped.wait(60)  # the next frame: a window's propagation at most
        return "Cancelled: nothing was written." if state.stopped.is_set() else "Cancelling..."

    # Gradio's copies of uploads and results older than a day are deleted (checked hourly); jobs/ is the user's
    with gr.Blocks(title="vsrlab: video super-resolution", delete_cache=(3600, 86400)) as page:
        gr.Markdown("# vsrlab\nUpscale a video (MP4, MOV, MKV, AVI, WebM) or a photo. Audio is kept; "
                    "jobs run one at a time on this machine.")
        with gr.Row():
            with gr.Column():
                upload = gr.File(label="Video or photo", file_count="single", type="filepath", elem_id="upload")
                preset = gr.Radio(list(PRESETS), value="default", label="Model")
                gr.Markdown("\n".join(f"- **{name}**: {text}" for name, text in PRESETS.items()))
                target = gr.Radio(list(TARGETS), value="x4", label="Target (scale, or a resolution to fit)")
                denoise = gr.Dropdown(["auto", "0", "0.25", "0.5", "0.75", "1"], value="auto",
                                      label="Noise reduction (neighbouring frames, aligned; auto: the model's setting)")
                sharpen = gr.Dropdown(["auto", "0", "0.25", "0.5", "0.75", "1"], value="auto",
                                      label="Sharpen (after upscaling; auto: the model's setting)")
                color_match = gr.Checkbox(label="Match the input's colours")
                interpolate = gr.Checkbox(label="Double the frame rate (frame interpolation)")
                with gr.Row():
                    start = gr.Button("Upscale", variant="primary", elem_id="start")
                    stop = gr.Button("Cancel", elem_id="cancel")
            with gr.Column():
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                result = gr.File(label="Download", interactive=False, elem_id="result")
                compare = gr.ImageSlider(label="Before (bicubic) / after, middle frame at full resolution",
                                         type="numpy", elem_id="compare")
        event = start.click(upscale, [upload, preset, target, denoise, sharpen, color_match, interpolate],
                            [status, result, compare], concurrency_limit=1, concurrency_id="jobs",
                            show_progress_on=[status])
        stop.click(cancel, None, status, cancels=[event], queue=False)
    return page


def done_text(summary: dict) -> str:
    if "frames" not in summary:  # an image
        return f"Done: {Path(summary['output']).name}"
    w, h = summary["input_size"]
    ow, oh = summary["output_size"]
    return (f"Done: {summary['frames']} frames {w}x{h} -> {ow}x{oh} in {summary['seconds']:.1f} s "
            f"({summary['fps']:.2f} frames/s), audio {summary['audio']}; model: {summary['model']}.")


@one_line_errors
def serve(argv: list[str]) -> None:
    args = parse_args(argv)
    jobs = Path(args.jobs).resolve()
    base = base_config(args.overrides)
    jobs.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(jobs / "uploads")  # Gradio's uploads and copies stay under --jobs
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home (and none possible offline)
    page = build_page(base, jobs)
    print(f"vsrlab web page on http://{args.host}:{args.port} (jobs in {jobs})", file=sys.stderr, flush=True)
    page.queue(default_concurrency_limit=1).launch(server_name=args.host, server_port=args.port, share=args.share,
                                                  allowed_paths=[str(jobs)], quiet=True)


def cli() -> None:
    serve(sys.argv[1:])
