"""Photos as phones make them: EXIF with GPS position, camera and orientation, a colour profile."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

GPS_IFD = 0x8825
MAKE, MODEL, ORIENTATION = 0x010F, 0x0110, 0x0112
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def phone_photo(size: tuple[int, int] = (600, 400), *, orientation: int = 6) -> bytes:
    """A JPEG carrying GPS coordinates (Lagos), a camera, an orientation, a comment and sRGB."""
    exif = Image.Exif()
    exif[MAKE] = "Phonemaker"
    exif[MODEL] = "Pocket 12"
    exif[ORIENTATION] = orientation
    exif[GPS_IFD] = {1: "N", 2: (6.0, 27.0, 15.0), 3: "E", 4: (3.0, 23.0, 40.0)}
    out = io.BytesIO()
    Image.new("RGB", size, (150, 60, 30)).save(
        out, format="JPEG", exif=exif, icc_profile=SRGB, comment=b"taken at home"
    )
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD), "the photo carries GPS tags"
    return data


def metadata_of(data: bytes) -> dict[str, object]:
    """What a stored image still says about itself besides its pixels and colour profile."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        left: dict[str, object] = {f"exif:{tag:#06x}": value for tag, value in exif.items()}
        if exif.get_ifd(GPS_IFD):
            left["gps"] = exif.get_ifd(GPS_IFD)
        for key in ("exif", "xmp", "comment", "photoshop", "XML:com.adobe.xmp"):
            if key in image.info:
                left[key] = image.info[key]
        return left
