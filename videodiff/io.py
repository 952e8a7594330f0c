"""Reading and writing videos and sample grids.

Files on disk and numpy arrays are uint8 ``(F, H, W, C)``; library tensors are float ``(C, F, H, W)`` in
[-1, 1]. Containers (mp4/avi/webm/mkv/mov) go through PyAV; GIFs are read with PIL and written through
PyAV's GIF encoder with a PIL palette per frame, because PIL's own GIF writer silently merges identical
consecutive frames (a static stretch of a sample would lose frames). Every failure to read a file raises
``VideoReadError`` naming the path and the reason.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageSequence

from .frames import to_uint8, video_grid  # pure tensor -> frames functions, re-exported here

__all__ = ["WRITE_FORMATS", "VideoReadError", "load_tensor_file", "MAX_FRAME_PIXELS", "video_info", "read_video",
           "to_uint8", "video_grid", "write_video", "save_video_grid"]

WRITE_FORMATS = (".gif", ".mp4", ".png")


class VideoReadError(RuntimeError):
    """A video file is missing, empty, truncated, corrupt or too short; the message names the path."""


def load_tensor_file(path: str | os.PathLike, what: str = "file"):
    """``torch.load`` of a tensor file with ``weights_only=True`` (no code from the file runs). Any failure (not a
    torch file, truncated, a pickle that needs code) is a ValueError naming ``what`` and the path, with the reason
    but never torch's advice to load it with ``weights_only=False``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path}: file does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and format errors of all kinds
        text = str(e)
        glob = re.search(r"GLOBAL ([\w.]+)", text)
        if isinstance(e, pickle.UnpicklingError) and glob:  # a pickle that needs code (hostile or not tensors)
            reason = f"it holds Python objects ({glob.group(1)}) that a tensor file must not"
        else:
            lines = [line.strip() for line in text.splitlines()
                     if line.strip() and not re.search(r"weights.only|safe_globals|torch\.serialization", line, re.I)]
            reason = lines[0] if lines else type(e).__name__
        raise ValueError(f"{what} {path}: cannot load as a tensor file: {reason}") from None


def _honour_umask(path: str) -> None:
    """mkstemp creates files 0600; give the finished file the mode a plain ``open`` would (0666 & ~umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


# ----------------------------------------------------------------------------------------------- reading


# Frames above this many pixels are refused before decoding (a 4.6 KB GIF can declare a 9000x9000 canvas, which
# decodes to 243 MB per frame). 8K UHD (7680x4320) is 33.2M pixels.
MAX_FRAME_PIXELS = 7680 * 4320


def _check_canvas(path: Path, width: int, height: int) -> None:
    if width * height > MAX_FRAME_PIXELS:
        raise VideoReadError(f"{path}: frames of {width}x{height} pixels exceed the reader's limit of "
                             f"{MAX_FRAME_PIXELS} pixels (8K UHD); refusing to decode")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoReadError(f"{path}: file does not exist")
    if not path.is_file():
        raise VideoReadError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: file is empty")


def _open_container(path: Path):
    """Open ``path`` with PyAV; return (container, first video stream)."""
    _check_file(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise VideoReadError(f"{path}: cannot open as a video ({e})") from e
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"{path}: contains no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:  # a codec FFmpeg does not know (e.g. a damaged sample description)
        container.close()
        codec = getattr(stream, "name", None) or "unknown"
        raise VideoReadError(f"{path}: no decoder for its video stream (codec {codec!r}); the file is corrupt or "
                             f"uses an unsupported codec")
    return container, stream


def _open_gif(path: Path) -> Image.Image:
    _check_file(path)
    try:
        im = Image.open(path)
        im.seek(0)
    except Exception as e:  # PIL raises OSError, EOFError, IndexError, SyntaxError...
        raise VideoReadError(f"{path}: cannot open as a GIF ({e})") from e
    if im.format != "GIF":
        raise VideoReadError(f"{path}: has a .gif name but holds {im.format} data")
    return im


def video_info(path: str | os.PathLike) -> tuple[int, int, int, float]:
    """``(num_frames, height, width, fps)`` from the file's header; counts packets when it has no count."""
    path = Path(path)
    if path.suffix.lower() == ".gif":
        im = _open_gif(path)
        try:
            n, (w, h) = im.n_frames, im.size
            duration_ms = im.info.get("duration") or 100
        except Exception as e:  # PIL raises OSError, EOFError, IndexError, SyntaxError...
            raise VideoReadError(f"{path}: corrupt GIF ({e})") from e
        finally:
            im.close()
        return n, h, w, 1000.0 / duration_ms
    container, stream = _open_container(path)
    try:
        n = stream.frames
        if n <= 0:  # webm/mkv and some avi carry no frame count: demux (no decoding) and count packets
            n = sum(1 for p in container.demux(stream) if p.size > 0)
        rate = stream.average_rate or stream.guessed_rate or 0
        h, w = stream.codec_context.height, stream.codec_context.width
    except av.error.FFmpegError as e:
        raise VideoReadError(f"{path}: corrupt video ({e})") from e
    finally:
        container.close()
    if n <= 0 or h <= 0 or w <= 0:
        raise VideoReadError(f"{path}: header declares no frames ({n} frames, {w}x{h})")
    return n, h, w, float(rate)


def _seek_to(container, stream, start: int) -> bool:
    """Seek to the keyframe at or before frame ``start``; False when the stream lacks the timing needed."""
    if start <= 0 or not stream.average_rate or stream.time_base is None:
        return False
    target = (stream.start_time or 0) + int(Fraction(start) / Fraction(stream.average_rate) / stream.time_base)
    container.seek(target, stream=stream, backward=True, any_frame=False)
    return True


def _decode(path: Path, start: int, max_frames: int | None, step: int, seek: bool = True) -> list[np.ndarray]:
    """Decode with PyAV. After a seek, frame indices come from timestamps; if they are not consecutive
    (variable frame rate, an overshooting seek, missing pts) decoding restarts from frame 0 without seeking,
    so both paths return the same frames."""
    container, stream = _open_container(path)
    declared = stream.frames
    frames: list[np.ndarray] = []
    restart = False
    try:
        _check_canvas(path, stream.codec_context.width, stream.codec_context.height)
        seeked = seek and _seek_to(container, stream, start)
        origin, rate, time_base = stream.start_time or 0, stream.average_rate, stream.time_base
        index = -1
        for frame in container.decode(stream):
            if seeked:
                pts_index = None if frame.pts is None else round((frame.pts - origin) * time_base * rate)
                first = index < 0
                if pts_index is None or (first and pts_index > start) or (not first and pts_index != index + 1):
                    restart = True
                    break
                index = pts_index
            else:
                index += 1
            if index < start or (index - start) % step:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    except av.error.FFmpegError as e:
        raise VideoReadError(f"{path}: corrupt or truncated video after {len(frames)} frames ({e})") from e
    finally:
        container.close()
    if restart:
        return _decode(path, start, max_frames, step, seek=False)
    _check_count(path, frames, declared, start, max_frames, step)
    return frames


def _check_count(path, frames, declared: int, start: int, max_frames: int | None, step: int) -> None:
    """No frames, or fewer than the header promises, means a bad file or a start past the end."""
    if not frames:
        raise VideoReadError(f"{path}: no frames decoded from frame {start} (the header declares {declared})")
    if declared > 0:
        available = max(0, math.ceil((declared - start) / step))
        expected = available if max_frames is None else min(max_frames, available)
        if len(frames) < expected:
            raise VideoReadError(
                f"{path}: decoded {len(frames)} frames but the header promises {expected} "
                f"(from frame {start}, step {step}); the file is truncated or corrupt"
            )


def _read_gif(path: Path, start: int, max_frames: int | None, step: int) -> list[np.ndarray]:
    im = _open_gif(path)
    frames: list[np.ndarray] = []
    try:
        _check_canvas(path, *im.size)
    except VideoReadError:
        im.close()
        raise
    try:
        for index, frame in enumerate(ImageSequence.Iterator(im)):
            if index >= start and (index - start) % step == 0:
                frames.append(np.asarray(frame.convert("RGB")))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except Exception as e:  # PIL raises OSError, EOFError, IndexError, SyntaxError...
        raise VideoReadError(f"{path}: corrupt or truncated GIF after {len(frames)} frames ({e})") from e
    finally:
        im.close()
    if not frames:
        raise VideoReadError(f"{path}: no frames decoded from frame {start}")
    return frames


def read_video(
    path: str | os.PathLike, *, max_frames: int | None = None, start: int = 0, step: int = 1
) -> np.ndarray:
    """Decode frames ``start, start + step, ...`` (at most ``max_frames``) as uint8 ``(F, H, W, 3)``.

    Containers seek to the keyframe before ``start`` and stop decoding after the last needed frame.
    Returns fewer frames only when the video ends; raises ``VideoReadError`` on any unreadable file and
    when ``start`` is past the last frame.
    """
    path = Path(path)
    if start < 0 or step < 1 or (max_frames is not None and max_frames < 1):
        raise ValueError(f"read_video({path}): need start >= 0, step >= 1, max_frames >= 1 or None; "
                         f"got start={start}, step={step}, max_frames={max_frames}")
    if path.suffix.lower() == ".gif":
        frames = _read_gif(path, start, max_frames, step)
    else:
        frames = _decode(path, start, max_frames, step)
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:  # e.g. a GIF frame whose descriptor was damaged
        raise VideoReadError(f"{path}: frames differ in size ({', '.join(str(s[1::-1]) for s in sorted(shapes))} "
                             f"as W x H); the file is corrupt")
    return np.stack(frames)


# ------------------------------------------------------------------------------------ tensors and grids


# ---------------------------------------------------------------------------------------------- writing


def _as_frames(frames: np.ndarray) -> np.ndarray:
    """Validate uint8 ``(F, H, W, C)``, C in (1, 3); a ``(F, H, W)`` array counts as one channel."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in (1, 3) or 0 in frames.shape:
        raise ValueError(f"expected uint8 frames (F, H, W, C) with C in (1, 3), got {frames.dtype} "
                         f"{frames.shape}")
    return frames


def _write_gif(tmp: str, frames: np.ndarray, fps: int) -> None:
    """GIF via PyAV (keeps every frame), looping forever; gray is exact, RGB gets a palette per frame."""
    f, h, w, c = frames.shape
    gray_palette = np.concatenate([np.full((256, 1), 255, np.uint8), np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1)], 1)
    with av.open(tmp, "w", format="gif", options={"loop": "0"}) as out:
        stream = out.add_stream("gif", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "pal8"
        for frame in frames:
            if c == 1 or (np.array_equal(frame[..., 0], frame[..., 1]) and np.array_equal(frame[..., 0], frame[..., 2])):
                indices, palette = np.ascontiguousarray(frame[..., 0]), gray_palette
            else:
                quant = Image.fromarray(frame).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
                indices = np.asarray(quant)
                rgb = np.zeros(768, np.uint8)
                pal = quant.getpalette()
                rgb[: len(pal)] = pal
                palette = np.concatenate([np.full((256, 1), 255, np.uint8), rgb.reshape(256, 3)], 1)  # ARGB
            for packet in stream.encode(av.VideoFrame.from_ndarray((indices, palette), format="pal8")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _write_mp4(tmp: str, frames: np.ndarray, fps: int) -> None:
    """H.264 yuv420p (plays everywhere); odd sizes are padded by repeating the last row/column."""
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    _, h, w, _ = frames.shape
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    with av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "18", "preset": "medium"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _write_png(tmp: str, frames: np.ndarray) -> None:
    """All frames left to right in one image."""
    strip = np.concatenate(list(frames), axis=1)  # (H, F*W, C)
    Image.fromarray(strip[..., 0] if strip.shape[-1] == 1 else strip).convert("RGB").save(tmp, format="PNG")


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 8) -> None:
    """Write uint8 ``(F, H, W, C)`` frames; the extension picks .gif (looping), .mp4 (H.264) or .png (a
    frame strip). Parent folders are created; the file appears atomically (temp file, then rename)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_FORMATS:
        raise ValueError(f"write_video({path}): unknown extension {ext!r}; use one of {', '.join(WRITE_FORMATS)}")
    frames = _as_frames(frames)
    if fps < 1:
        raise ValueError(f"write_video({path}): fps must be >= 1, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=ext, dir=path.parent)
    os.close(fd)
    try:
        if ext == ".gif":
            _write_gif(tmp, frames, int(fps))
        elif ext == ".mp4":
            _write_mp4(tmp, frames, int(fps))
        else:
            _write_png(tmp, frames)
        _honour_umask(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None:  # name the file asked for, not the temporary one
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def save_video_grid(videos: torch.Tensor, path: str | os.PathLike, *, nrow: int | None = None, fps: int = 8) -> None:
    """``write_video(path, video_grid(videos, nrow), fps)``."""
    write_video(path, video_grid(videos, nrow=nrow), fps=fps)
