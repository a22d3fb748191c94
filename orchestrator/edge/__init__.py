"""The cloud edge (``jalsa edge``): one studio's contribution in, every destination out."""
