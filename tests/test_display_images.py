"""Image checks (pure, with real Pillow): the type from the bytes, the size and dimension limits,
and re-encoding that drops metadata and anything appended to the file."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image, PngImagePlugin

from chronotrack.display.images import MAX_IMAGE_BYTES, ImageRefused, clean_image, safe_file_name


def picture(format_name: str, size=(64, 32), mode="RGB", **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 40) if mode == "RGB" else (200, 30, 40, 128)).save(out, format_name, **save)
    return out.getvalue()


@pytest.mark.parametrize("format_name, content_type, extension", [
    ("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg"), ("WEBP", "image/webp", "webp")])
def test_png_jpeg_and_webp_are_accepted_and_re_encoded_in_their_own_format(format_name, content_type, extension):
    cleaned = clean_image(picture(format_name))
    assert (cleaned.content_type, cleaned.extension, cleaned.width, cleaned.height) == (content_type, extension, 64, 32)
    assert Image.open(io.BytesIO(cleaned.data)).format == format_name
    assert cleaned.sha256 == hashlib.sha256(cleaned.data).hexdigest()


def test_metadata_and_trailing_bytes_are_gone():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret GPS 51.5N 0.1W")
    exif = Image.Exif()
    exif[0x010E] = "secret description"
    original = picture("PNG", pnginfo=info, exif=exif) + b"<script>alert(1)</script>"
    assert b"secret" in original
    cleaned = clean_image(original)
    assert b"secret" not in cleaned.data and b"<script>" not in cleaned.data
    assert Image.open(io.BytesIO(cleaned.data)).info.get("Comment") is None


def test_jpeg_exif_is_stripped():
    exif = Image.Exif()
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # a GPS position
    exif[0x010F] = "SecretCamera"
    cleaned = clean_image(picture("JPEG", exif=exif))
    assert b"SecretCamera" not in cleaned.data
    assert not Image.open(io.BytesIO(cleaned.data)).getexif()


def test_a_transparent_png_keeps_its_alpha():
    cleaned = clean_image(picture("PNG", mode="RGBA"))
    assert Image.open(io.BytesIO(cleaned.data)).mode == "RGBA"


@pytest.mark.parametrize("data", [
    b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    b"GIF89a" + b"\x00" * 100,
    b"%PDF-1.4 not an image",
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # a PNG signature and nothing behind it
])
def test_anything_else_is_refused_whatever_it_is_called(data):
    with pytest.raises(ImageRefused) as caught:
        clean_image(data)
    assert not caught.value.too_large


def test_a_gif_is_refused_although_pillow_could_read_it():
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, "GIF")
    with pytest.raises(ImageRefused):
        clean_image(out.getvalue())


def test_too_many_bytes_is_refused_as_too_large():
    with pytest.raises(ImageRefused) as caught:
        clean_image(b"\x89PNG" + b"\x00" * MAX_IMAGE_BYTES)
    assert caught.value.too_large


def test_dimensions_over_4096_are_refused_before_decoding():
    # A 5000 x 10 PNG is a few hundred bytes: the limit is on pixels, not on the file size.
    data = picture("PNG", size=(5000, 10))
    assert len(data) < 10_000
    with pytest.raises(ImageRefused) as caught:
        clean_image(data)
    assert "4096" in str(caught.value)


def test_a_decompression_bomb_is_refused():
    # 4096 x 4096 is allowed in size, so forge a header claiming far more pixels than any upload has.
    data = bytearray(picture("PNG", size=(1, 1)))
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    data[8:33] = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    with pytest.raises(ImageRefused):
        clean_image(bytes(data))


def test_file_names_become_labels_not_paths():
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\Users\\me\\logo.png") == "logo.png"
    assert safe_file_name("a\x00b\nc.png") == "abc.png"
    assert safe_file_name("") == "image"
    assert len(safe_file_name("x" * 500)) == 200
