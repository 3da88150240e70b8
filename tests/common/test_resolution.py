"""pgdata.common.resolution: the power-of-two rule and log2 that pgtrain's networks, pgdata's pyramid and the many
former `r < 4 or r & (r - 1)` checks now share."""

from __future__ import annotations

import pytest

from pgdata.common.resolution import is_power_of_two, resolution_log2


def test_by_hand() -> None:
    assert [resolution_log2(r) for r in (4, 8, 1024)] == [2, 3, 10]
    assert resolution_log2(16, minimum=16) == 4 and resolution_log2(1, minimum=1) == 0
    for bad in (0, -4, 2, 3, 6, 12, 1000, 4.5, "8", None, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"^resolution must be a power of two >= 4, got "):
            resolution_log2(bad)
    assert is_power_of_two(8.0) and not is_power_of_two(True, 2) and not is_power_of_two(8, minimum=16)


def test_log2_is_the_exponent_of_the_powers_of_two() -> None:
    powers = {2**exponent: exponent for exponent in range(2, 31)}
    for resolution in [*range(-3, 2100), 2**20 - 1, 2**20, 2**20 + 1, 2**30]:
        if resolution in powers:
            assert resolution_log2(resolution) == powers[resolution]
        else:
            with pytest.raises(ValueError, match=rf"^resolution must be a power of two >= 4, got {resolution}$"):
                resolution_log2(resolution)
    assert resolution_log2(8.0) == 3


def test_the_bit_test_of_the_readers_and_checks() -> None:
    """`resolution < 4 or resolution & (resolution - 1)` (pgtrain.data, pgdata's sources and readers) and
    SWD's 16 minimum."""
    for value in range(-70, 5000):
        assert is_power_of_two(value, 4) == (not (value < 4 or value & (value - 1)))
        assert is_power_of_two(value, 16) == (not (value < 16 or value & (value - 1)))
