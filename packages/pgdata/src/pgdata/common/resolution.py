"""Resolutions: the networks, the datasets and SWD all work on square power-of-two images of at least 4x4
(the official networks assert the same), and count levels by log2 of the resolution."""

from __future__ import annotations

LOWEST_RESOLUTION = 4


def is_power_of_two(value: object, minimum: int = 1) -> bool:
    """Whether `value` is an integer (or an integral float) 2**k that is at least `minimum`."""
    try:
        integer = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return False
    return integer == value and integer >= minimum and integer & (integer - 1) == 0


def resolution_log2(resolution: int, minimum: int = LOWEST_RESOLUTION) -> int:
    """log2 of a power-of-two resolution >= `minimum`, or a one-line ValueError (callers turn it into their
    package's error when the resolution is the user's)."""
    if not is_power_of_two(resolution, minimum):
        raise ValueError(f"resolution must be a power of two >= {minimum}, got {resolution}")
    return int(resolution).bit_length() - 1
