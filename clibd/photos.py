"""Photos as every entry point reads them: size-checked from the header, then decoded reduced.

The service's uploads, its batch jobs and `clibd identify` in-process all read photos here, so one photo gets
the same answer (or the same refusal, with the same words) whichever way it comes in.

Our own pixel limit is checked from the header, before decoding, so that the message names the image's real
size; PIL's process-wide guard stays on behind it. At most DECODE_SLOTS decodes run at once in the process, each
reduced on the fly to `max_side` (the model sees a few hundred pixels), so a flood of huge photos holds a
bounded amount of memory.
"""
from __future__ import annotations

import io
import re
import threading
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

from PIL import Image, UnidentifiedImageError

DECODE_SLOTS = 2
_DECODES = threading.BoundedSemaphore(DECODE_SLOTS)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif")


class InputError(ValueError):
    """Bad input: an HTTP status (4xx) and a precise message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class PhotoLimits:
    """What the photos of one specimen may be."""

    max_image_pixels: int = 50_000_000
    min_image_side: int = 16
    max_request_pixels: int = 200_000_000  # all the images of one specimen (one request) together
    max_side: int = 1024  # images are reduced to this side while decoding


def _mpx(pixels: float) -> str:
    """Megapixels as a message gives them: whole from 10 Mpx, else to two decimals."""
    return f"{pixels / 1e6:,.0f}" if pixels >= 1e7 else f"{pixels / 1e6:.2f}"


def _open(data: bytes, name: str, limits: PhotoLimits) -> Image.Image:
    """The image's header, checked for size (nothing decoded yet)."""
    if not data:
        raise InputError(422, f"image {name!r} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit below says it better
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # PIL's own guard, far above ours: its message has the size
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{_mpx(int(pixels.group(1)))} Mpx" if pixels else "more pixels than PIL opens"
        guard = 2 * (Image.MAX_IMAGE_PIXELS or 0)  # where PIL refuses; with our limit set higher, it refused
        which = ("the image library's limit", guard) if 0 < guard < limits.max_image_pixels else \
            ("the limit", limits.max_image_pixels)
        raise InputError(413, f"image {name!r} is {size}, over {which[0]} of {_mpx(which[1])} Mpx") from None
    except UnidentifiedImageError:
        raise InputError(422, f"{name!r} is not an image in a format we read (JPEG, PNG, TIFF, BMP, WebP, GIF)") \
            from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(422, f"image {name!r} is corrupt or truncated: {exc}") from None
    w, h = img.size
    if w * h > limits.max_image_pixels:
        raise InputError(413, f"image {name!r} is {w}x{h} pixels ({_mpx(w * h)} Mpx), over the limit "
                              f"of {_mpx(limits.max_image_pixels)} Mpx")
    if min(w, h) < limits.min_image_side:
        raise InputError(422, f"image {name!r} is {w}x{h} pixels; at least {limits.min_image_side} "
                              f"pixels a side are needed")
    return img


def read_image(data: bytes, name: str, limits: PhotoLimits) -> Image.Image:
    """A decoded RGB image (reduced to `limits.max_side`), or InputError for empty, corrupt, truncated, tiny
    or oversized files."""
    return _decode(_open(data, name, limits), name, limits)


def _decode(img: Image.Image, name: str, limits: PhotoLimits) -> Image.Image:
    """Decode an opened (size-checked) image under the process-wide decode limit, reduced while decoding."""
    with _DECODES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.draft("RGB", (limits.max_side, limits.max_side))  # JPEG: decode at a reduced scale
                img.load()
                if max(img.size) > limits.max_side:
                    img.thumbnail((limits.max_side, limits.max_side), reducing_gap=2.0)
                return img.convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise InputError(422, f"image {name!r} is corrupt or truncated: {exc}") from None
        finally:
            img.close()


def read_images(images: list[tuple[bytes, str]], limits: PhotoLimits,
                after_large: Optional[Callable[[], object]] = None, large_pixels: int = 0) -> list[Image.Image]:
    """The images of one specimen, decoded after checking their pixels together; `after_large` runs once they
    are decoded when they held `large_pixels` or more (a server hands freed memory back)."""
    opened = [(_open(data, name, limits), name) for data, name in images]  # headers only: nothing decoded yet
    total = sum(img.size[0] * img.size[1] for img, _ in opened)
    if total > limits.max_request_pixels:
        raise InputError(413, f"the {len(images)} images hold {_mpx(total)} Mpx together, over the limit of "
                              f"{_mpx(limits.max_request_pixels)} Mpx per specimen")
    decoded = [_decode(img, name, limits) for img, name in opened]
    del opened
    if after_large is not None and total >= large_pixels:
        after_large()
    return decoded
