"""The fixed-window counter shared by the API rate limit and the sign-in throttle."""

import pytest

from auditlog.throttling import parse_rate


def test_rates_are_parsed_with_a_multiple_of_the_unit():
    assert parse_rate("5/15min") == (5, 900)
    assert parse_rate("1000/min") == (1000, 60)
    assert parse_rate("50 / 2h") == (50, 7200)
    assert parse_rate("3/s") == (3, 1)
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate("5 per minute")
