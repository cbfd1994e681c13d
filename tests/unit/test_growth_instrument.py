"""The instrument behind every growth test (tests/conftest.py `assert_linear`) tells linear code
from quadratic code; otherwise the growth tests of issue 5 would pass whatever the code does."""
from __future__ import annotations

import pytest


def _linear(text: str) -> int:
    return text.count("a")


def _quadratic(text: str) -> int:
    # one C-level scan of the rest of the text per 16 characters: n * n / 32 character reads
    return sum(text.count("b", i) for i in range(0, len(text), 16))


def test_linear_code_passes(assert_linear) -> None:
    assert assert_linear(_linear, lambda n: "a" * n, "count") < 16


def test_quadratic_code_fails_even_after_the_retries(assert_linear) -> None:
    with pytest.raises(AssertionError, match="three measurements"):
        assert_linear(_quadratic, lambda n: "a" * n, "rescan from every position")
