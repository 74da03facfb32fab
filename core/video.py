"""MP4 files from RGB frames, through the ffmpeg binary that imageio-ffmpeg ships."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_mp4(frames: list[np.ndarray], path: str | Path, fps: float = 30.0) -> Path:
    """Encode (H, W, 3) uint8 frames as H.264 in an MP4 container, written atomically.
    Odd frame sizes are padded by one pixel (yuv420p needs even sizes)."""
    import imageio_ffmpeg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    pad_h, pad_w = height % 2, width % 2
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    writer = imageio_ffmpeg.write_frames(str(tmp), (width + pad_w, height + pad_h), fps=fps, codec="libx264",
                                         pix_fmt_out="yuv420p", macro_block_size=1, quality=7,
                                         ffmpeg_log_level="error")
    writer.send(None)
    try:
        for frame in frames:
            frame = np.ascontiguousarray(np.pad(frame[..., :3], ((0, pad_h), (0, pad_w), (0, 0)), mode="edge"))
            writer.send(frame)
    finally:
        writer.close()
    os.replace(tmp, path)
    return path


def video_fps(env_family: str, metadata: dict) -> float:
    """Frames per second of an env's videos: Atari plays at 15 (every 4th of 60 frames, the
    frame skip), anything else at its ``render_fps`` (30 if it declares none)."""
    return 15.0 if env_family == "atari" else float(metadata.get("render_fps") or 30)
