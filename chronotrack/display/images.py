"""Uploaded images, made safe to store and serve: what they are, how big, and nothing hidden.

The type is found from the bytes by Pillow (PNG, JPEG and WebP decoders only), never from
the file name or the browser's Content-Type. The size and the dimensions are checked before
the pixels are decoded (Pillow's decompression-bomb guard stays on as well), then the
pixels are copied into a fresh image and encoded again: metadata (EXIF with GPS positions,
text chunks, colour profiles), trailing data and anything appended to the file are gone.
``clean_image`` is slow, blocking work: the web layer runs it with ``deferToThread``.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_DIMENSION = 4096
FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}
EXTENSIONS = {extension: content_type for content_type, extension in FORMATS.values()}
MAX_NAME_LENGTH = 200


class ImageRefused(ValueError):
    """An upload we will not store; the message says why, in words an operator understands."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    sha256: str

    @property
    def byte_size(self) -> int:
        return len(self.data)


def check_upload_size(size: int) -> None:
    if size == 0:
        raise ImageRefused("the file is empty")
    if size > MAX_IMAGE_BYTES:
        raise ImageRefused(f"images may be at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB", too_large=True)


def clean_image(data: bytes) -> CleanImage:
    """The upload decoded, checked and encoded again in its own format; else ImageRefused."""
    check_upload_size(len(data))
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
            format_name = image.format
            width, height = image.size
            if width > MAX_DIMENSION or height > MAX_DIMENSION:
                raise ImageRefused(f"images may be at most {MAX_DIMENSION}x{MAX_DIMENSION} pixels "
                                   f"(this one is {width}x{height})")
            image.seek(0)  # an animation: its first frame
            image.load()
            pixels = _plain_pixels(image)
    except ImageRefused:
        raise
    except Image.DecompressionBombError:
        raise ImageRefused("the image would decode to far too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise ImageRefused("not a PNG, JPEG or WebP image (or a damaged one)") from None
    content_type, extension = FORMATS[format_name]
    out = io.BytesIO()
    if format_name == "JPEG":
        pixels.save(out, "JPEG", quality=90, optimize=True)
    elif format_name == "WEBP":
        pixels.save(out, "WEBP", quality=90, lossless=False)
    else:
        pixels.save(out, "PNG", optimize=True)
    encoded = out.getvalue()
    return CleanImage(encoded, content_type, extension, pixels.width, pixels.height,
                      hashlib.sha256(encoded).hexdigest())


def _plain_pixels(image: Image.Image) -> Image.Image:
    """The pixels alone in a new image (no ``info``: no EXIF, ICC, text chunks), in a mode every format takes."""
    if image.mode in ("P", "PA", "LA", "La", "RGBa", "I;16", "I", "F") or "transparency" in image.info:
        has_alpha = image.mode in ("PA", "LA", "La", "RGBa", "RGBA") or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif image.mode in ("CMYK", "YCbCr", "1"):
        image = image.convert("RGB")
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA")
    return Image.frombytes(image.mode, image.size, image.tobytes())


def safe_file_name(name: str) -> str:
    """The original file name as a label: printable, at most 200 characters, never a path."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(character for character in base if character.isprintable())
    return printable.strip()[:MAX_NAME_LENGTH] or "image"
