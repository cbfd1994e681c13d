"""The HTML stripper of descriptions (`plain_text`) runs in linear time on hostile markup (issue 5:
a 300 KB description of `<` took ~20 s).

Each input is built to hurt: the pattern's prefix followed by repeats of what its quantifiers accept,
or what an HTML stripper has to look ahead over. `assert_linear` (tests/conftest.py) times 16 KB
against 128 KB, best of 3: linear code gives a ratio of ~8, quadratic ~64; the limit is 16.
"""
from __future__ import annotations

from typing import Callable

import pytest

from intelligent_pipeline.metadata.values import plain_text


def repeat(prefix: str, unit: str, suffix: str = "") -> Callable[[int], str]:
    def make(n: int) -> str:
        return prefix + unit * max(1, (n - len(prefix) - len(suffix)) // len(unit)) + suffix
    return make


HTML_INPUTS = {
    "lt": repeat("", "<"),
    "lt_p": repeat("", "<p"),
    "lt_slash_p": repeat("", "</p "),
    "script_then_lt": repeat("<script>", "<"),
    "script_repeated": repeat("", "<script>"),
    "script_then_close_prefixes": repeat("<script>", "</scrip"),
    "style_unclosed_closes": repeat("<style>", "</style"),
    "amp": repeat("", "&"),
    "amp_hash": repeat("", "&#"),
    "amp_hash_digits": repeat("&#", "1"),
    "amp_name": repeat("&", "a"),
    "comment_open": repeat("", "<!--"),
    "comment_then_dashes": repeat("<!--", "-"),
    "unclosed_tag_attrs": repeat("<a ", 'href="x" '),
    "nested_tags": repeat("", "<a<b"),
    "block_tags": repeat("", "<div>"),
    "words_and_tags": repeat("", "word <b>x</b> "),
    "spaces": repeat("<p>", " "),
    "lt_space": repeat("", "< "),
}


@pytest.mark.parametrize("shape", sorted(HTML_INPUTS))
def test_plain_text_is_linear(assert_linear, shape: str) -> None:
    # a limit as big as the input, so the bounded prefix does not hide the algorithm
    assert_linear(lambda text: plain_text(text, limit=len(text)), HTML_INPUTS[shape], f"plain_text {shape}")


def test_plain_text_reads_a_bounded_prefix_with_the_default_limit(assert_linear) -> None:
    assert_linear(plain_text, repeat("<script>", "<"), "plain_text default limit")
    huge = "<" * 5_000_000
    assert plain_text(huge).startswith("<<<")
