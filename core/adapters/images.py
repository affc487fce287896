"""Checking uploaded photos and making thumbnails (Pillow, plus HEIC through pillow-heif).

``inspect_image`` decodes for real (a file that only looks like an image is refused), refuses
formats outside the allow-list, decompression bombs and truncated files, and reports the size
the image has once its EXIF orientation is applied. It runs in a worker thread; JPEGs are
decoded at 1/8 scale (every byte is still read), which keeps memory small. ``shrink_checked``
makes the same checks and a small copy from one decode (search by photo).
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from collections.abc import Iterator

import msgspec
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import DomainError

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heic"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "HEIF": "heic"}
_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 degrees
_EXIF_ORIENTATION = 0x0112


class UnsupportedImage(DomainError):
    status_code = 415
    title = "Unsupported media type"
    code = "unsupported_media_type"


class UnusableImage(DomainError):
    status_code = 422
    title = "Unusable image"
    code = "unusable_image"


class ImageTooLarge(DomainError):
    status_code = 413
    title = "Image too large"
    code = "image_too_large"


@functools.cache
def register_heic_decoder() -> None:
    """Teach Pillow to open HEIC photos (phones). Idempotent.

    Done on first use rather than at import: pillow-heif costs ~12 MB, which the API would
    carry from its start for the uploads and searches by photo that need it. Processes that
    decode photos with Pillow directly (the inference worker) call it before they do.
    """
    from pillow_heif import register_heif_opener  # noqa: PLC0415

    register_heif_opener()


class ImageInfo(msgspec.Struct, frozen=True):
    format: str
    content_type: str
    extension: str
    width: int
    height: int


@contextlib.contextmanager
def _checked(data: bytes, *, max_bytes: int, max_pixels: int, min_side: int) -> Iterator[Image.Image]:
    """The upload opened and checked as far as its header tells (size, format, pixels, frames);
    the caller decodes the pixels inside the block. Raises what :func:`inspect_image` raises."""
    if len(data) > max_bytes:
        raise ImageTooLarge(f"Images may be at most {max_bytes // (1024 * 1024)} MiB.")
    if not data:
        raise UnsupportedImage("The upload is empty.")
    register_heic_decoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise UnsupportedImage(
                "The file is not an image we can read (JPEG, PNG, WebP or HEIC)."
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UnusableImage("The image has too many pixels.") from None
        except (OSError, SyntaxError, ValueError) as exc:
            # Recognised, but cut off or damaged within its header ("Truncated File Read").
            raise UnusableImage(f"The image is damaged or incomplete ({type(exc).__name__}).") from None
        with image:
            fmt = image.format or ""
            if fmt not in CONTENT_TYPES:
                raise UnsupportedImage(
                    f"{fmt or 'This'} images are not accepted; use JPEG, PNG, WebP or HEIC."
                )
            width, height = image.size
            if width * height > max_pixels:
                raise UnusableImage(f"The image has too many pixels (at most {max_pixels:,}).")
            if min(width, height) < min_side:
                raise UnusableImage(f"The image is too small (at least {min_side}px on each side).")
            if getattr(image, "n_frames", 1) > 1 and fmt != "HEIF":
                raise UnsupportedImage("Animated images are not accepted.")
            yield image


_UNREADABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int, min_side: int) -> ImageInfo:
    """Validate an uploaded image.

    Raises:
        ImageTooLarge: more than ``max_bytes`` (413).
        UnsupportedImage: not an image, or a format outside JPEG/PNG/WebP/HEIC (415).
        UnusableImage: too many pixels (decompression bomb), too small, truncated or corrupt (422).
    """
    with _checked(data, max_bytes=max_bytes, max_pixels=max_pixels, min_side=min_side) as image:
        fmt = image.format or ""
        width, height = image.size
        try:
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            if fmt == "JPEG":
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            image.load()
        except _UNREADABLE as exc:
            raise UnusableImage(f"The image is damaged or incomplete ({type(exc).__name__}).") from None
    if orientation in _SWAPS_SIDES:
        width, height = height, width
    return ImageInfo(
        format=fmt, content_type=CONTENT_TYPES[fmt], extension=EXTENSIONS[fmt], width=width, height=height
    )


def draft_box(size: tuple[int, int], side: int) -> tuple[int, int]:
    """The box to ask a JPEG's draft mode for so that its longer side keeps ``side`` pixels.

    Draft mode decodes at 1/2, 1/4 or 1/8 scale (in the DCT, before any pixel exists), picking the
    smallest scale that still covers the box on both axes; a box of the image's own proportions
    lets it go as far as the longer side allows.
    """
    width, height = size
    longer = max(width, height)
    if longer <= side:
        return size
    return (max(1, -(-width * side // longer)), max(1, -(-height * side // longer)))


def shrink_checked(
    data: bytes, side: int, *, max_bytes: int, max_pixels: int, min_side: int, quality: int = 82
) -> bytes:
    """An upload checked as :func:`inspect_image` checks it and shrunk to at most ``side`` pixels
    on its longer side (orientation applied, RGB, WebP), from one decode.

    A JPEG is decoded at the smallest draft scale that keeps ``2 * side`` pixels on its longer
    side (a 12-megapixel phone photo at 1/4 scale), so the resize that follows still averages
    pixels and its result is all but a full decode's. Every byte is still read, so a file cut
    short is refused. Other formats decode in full.

    Raises:
        ImageTooLarge (413), UnsupportedImage (415), UnusableImage (422): as :func:`inspect_image`.
    """
    with _checked(data, max_bytes=max_bytes, max_pixels=max_pixels, min_side=min_side) as image:
        try:
            if image.format == "JPEG":
                image.draft("RGB", draft_box(image.size, 2 * side))
            image.load()
            rgb = ImageOps.exif_transpose(image).convert("RGB")
        except _UNREADABLE as exc:
            raise UnusableImage(f"The image is damaged or incomplete ({type(exc).__name__}).") from None
    rgb.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, format="WEBP", quality=quality, method=4)
    return out.getvalue()


def make_thumbnail(data: bytes, max_side: int, *, quality: int = 82) -> bytes:
    """A WebP no larger than ``max_side`` on its longer side, orientation applied, RGB."""
    register_heic_decoder()
    with Image.open(io.BytesIO(data)) as image:
        if image.format == "JPEG":
            image.draft("RGB", (max_side * 2, max_side * 2))
        oriented = ImageOps.exif_transpose(image)
        rgb = oriented.convert("RGB")
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        rgb.save(out, format="WEBP", quality=quality, method=4)
        return out.getvalue()


# What each accepted format is stored as once its metadata is stripped (HEIC becomes JPEG: the
# format every client can show, and pillow-heif's encoder is slow).
_CLEAN_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "HEIF": "JPEG"}
_CLEAN_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95, "optimize": True},
    "PNG": {"optimize": False},
    "WEBP": {"quality": 95, "method": 4},
}


def clean_extension(info: ImageInfo) -> str:
    """The file extension an image of ``info`` has once :func:`strip_metadata` re-encoded it."""
    return EXTENSIONS[_CLEAN_FORMATS[info.format]]


def strip_metadata(data: bytes) -> tuple[bytes, ImageInfo]:
    """Re-encode an image :func:`inspect_image` accepted with no metadata but its colour profile.

    The EXIF orientation is applied to the pixels, then EXIF (GPS position, camera, times), XMP,
    IPTC, comments and text chunks are left behind: only the pixels, the ICC profile and PNG
    transparency are written. JPEG, PNG and WebP keep their format; HEIC becomes JPEG.

    Raises:
        UnusableImage: the image cannot be decoded after all (422).
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            icc_profile = image.info.get("icc_profile")
            transparency = image.info.get("transparency")
            pixels = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnusableImage(f"The image is damaged or incomplete ({type(exc).__name__}).") from None
    target = _CLEAN_FORMATS[fmt]
    if target == "JPEG" and pixels.mode not in ("L", "RGB", "CMYK"):
        pixels = pixels.convert("RGB")
    # A fresh info dict: savers fall back to ``image.info`` for some fields (a JPEG's comment).
    pixels.info = {} if transparency is None or target != "PNG" else {"transparency": transparency}
    options = dict(_CLEAN_OPTIONS[target])
    if icc_profile:
        options["icc_profile"] = icc_profile
    out = io.BytesIO()
    pixels.save(out, format=target, **options)
    width, height = pixels.size
    info = ImageInfo(
        format=target,
        content_type=CONTENT_TYPES[target],
        extension=EXTENSIONS[target],
        width=width,
        height=height,
    )
    return out.getvalue(), info
