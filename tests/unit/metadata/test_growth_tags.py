"""Tag cleaning and trigger-word splitting run in linear time on hostile text (issue 5): the prompt
weight suffix (`tag:1.2`) is stripped with string code, not a pattern that can backtrack.

`assert_linear` (tests/conftest.py) times 16 KB against 128 KB, best of 3: linear code gives a ratio
of ~8, quadratic ~64; the limit is 16.
"""
from __future__ import annotations

from typing import Callable

import pytest

from intelligent_pipeline.metadata.values import clean_tag, clean_tags, split_words


def repeat(prefix: str, unit: str, suffix: str = "") -> Callable[[int], str]:
    def make(n: int) -> str:
        return prefix + unit * max(1, (n - len(prefix) - len(suffix)) // len(unit)) + suffix
    return make


TAG_INPUTS = {
    "colon_digits": repeat("tag:", "1", "x"),
    "colon_spaces": repeat("tag:", " ", "x"),
    "colon_space_dashes": repeat("tag: ", "-"),
    "colon_digit_dots": repeat("tag:", "1.", "x"),
    "colons": repeat("", ":1"),
    "parens": repeat("", "("),
    "escaped_parens": repeat("", "\\("),
    "spaces": repeat("a", " ", "b"),
}


@pytest.mark.parametrize("shape", sorted(TAG_INPUTS))
def test_tag_cleaning_is_linear(assert_linear, shape: str) -> None:
    assert_linear(clean_tag, TAG_INPUTS[shape], f"clean_tag {shape}")


def test_clean_tags_and_split_words_are_linear(assert_linear) -> None:
    assert_linear(lambda text: clean_tags([text]), repeat("x:", "1"), "clean_tags one long tag")
    assert_linear(lambda n: clean_tags([f"t{i}" for i in range(n)]), lambda n: n // 8, "clean_tags many tags")
    assert_linear(split_words, repeat("", ","), "split_words commas")
    assert_linear(split_words, repeat("", " , "), "split_words spaced commas")
    assert_linear(split_words, repeat("", " "), "split_words spaces")
    assert_linear(lambda text: split_words(text, limit=10**9), repeat("", "a,"), "split_words many words")
