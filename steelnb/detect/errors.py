"""`DetectError`: a pile or setting that detection cannot work with; the message says what to do."""

from ..errors import SteelnbError


class DetectError(SteelnbError, ValueError):
    """A pile or setting that detection cannot work with (too few images, no labels where they are needed)."""
