"""Loggers that write files for other tools: TensorBoard event files (``--loggers
tensorboard``) and a wide CSV table (``--loggers csv``), both in the run directory with the
same keys and steps as ``metrics.jsonl``.

A resumed run has had its metrics.jsonl cut back to the checkpoint it resumes from; both
loggers cut themselves back to the same step, so no step is logged twice: the CSV rewrites
its rows, and TensorBoard, whose event files are append-only, gets a new file that starts
with a purge marker (TensorBoard's own mechanism for restarts: readers drop the earlier
files' events from that step on).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError

VIDEO_MAX_FRAMES = 150
"""Frames of an evaluation video kept in TensorBoard's animated image (evenly spaced)."""
VIDEO_MAX_WIDTH = 320


def last_logged_step(run_dir: Path) -> int | None:
    """The last step of metrics.jsonl (already cut back on a resume), None for a new run."""
    from toolkit.loggers import read_metric_lines

    lines = read_metric_lines(run_dir)
    return max(json.loads(line)["step"] for line in lines) if lines else None


class TensorBoardLogger:
    """Event files in ``<run_dir>/tensorboard``: every metric as a scalar, sample grids as
    images, evaluation videos as animated GIF images (TensorBoard's image dashboard plays them)."""

    def __init__(self, run_dir: Path, config: dict[str, Any] | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ToolkitError("--loggers tensorboard needs the 'tensorboard' package: "
                               "pip install 'toolkit[tensorboard]'") from None
        log_dir = Path(run_dir) / "tensorboard"
        resumed = log_dir.is_dir() and any(log_dir.glob("events.out.tfevents.*"))
        last = last_logged_step(run_dir) if resumed else None
        self.writer = SummaryWriter(str(log_dir), purge_step=None if last is None else last + 1)
        if config and not resumed:
            self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            if value is not None:
                self.writer.add_scalar(key, float(value), step)

    def log_media(self, step: int, media: dict[str, str]) -> None:
        for name, path in media.items():
            suffix = Path(path).suffix.lower()
            if suffix in (".png", ".jpg", ".jpeg"):
                from PIL import Image

                with Image.open(path) as image:
                    self.writer.add_image(name, np.asarray(image.convert("RGB")), step, dataformats="HWC")
            elif suffix == ".mp4":
                self._add_video(name, path, step)

    def _add_video(self, name: str, path: str, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        frames = read_video(path)
        gif, height, width = animated_gif(frames)
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=name, image=image)]), step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def read_video(path: str | Path) -> list[np.ndarray]:
    """The (H, W, 3) uint8 frames of an MP4 (through imageio-ffmpeg's ffmpeg)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return [np.frombuffer(frame, dtype=np.uint8).reshape(height, width, 3) for frame in reader]


def animated_gif(frames: list[np.ndarray], fps: float = 15.0) -> tuple[bytes, int, int]:
    """An animated GIF of at most ``VIDEO_MAX_FRAMES`` evenly spaced frames, at most
    ``VIDEO_MAX_WIDTH`` wide; returns (bytes, height, width)."""
    from PIL import Image

    keep = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), VIDEO_MAX_FRAMES)).round().astype(int))
    images = [Image.fromarray(frames[i]) for i in keep]
    width, height = images[0].size
    if width > VIDEO_MAX_WIDTH:
        height, width = round(height * VIDEO_MAX_WIDTH / width), VIDEO_MAX_WIDTH
        images = [image.resize((width, height)) for image in images]
    duration = 1000.0 / fps * len(frames) / len(keep)
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    return buffer.getvalue(), height, width


class CsvLogger:
    """``<run_dir>/metrics.csv``: one row per metrics record, one column per key (the header
    grows when a new key appears: the file is rewritten with the wider header, as SB3's
    progress.csv does). Media paths are left to metrics.jsonl."""

    def __init__(self, run_dir: Path, config: dict[str, Any] | None = None) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self.fields: list[str] = ["step"]
        if self.path.exists():
            last = last_logged_step(run_dir)
            with open(self.path, newline="") as fh:
                reader = csv.DictReader(fh)
                self.fields = list(reader.fieldnames or ["step"])
                rows = [row for row in reader if last is not None and int(row["step"]) <= last]
            self._rewrite(rows)
        self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, self.fields)
        if self.path.stat().st_size == 0:
            self.writer.writeheader()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **{k: "" if v is None else v for k, v in metrics.items()}}
        new = [key for key in row if key not in self.fields]
        if new:
            self.file.close()
            with open(self.path, newline="") as fh:
                rows = list(csv.DictReader(fh))
            self.fields += new
            self._rewrite(rows)
            self.file = open(self.path, "a", newline="")
            self.writer = csv.DictWriter(self.file, self.fields)
        self.writer.writerow(row)

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, self.fields)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def log_media(self, step: int, media: dict[str, str]) -> None:
        pass

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()
