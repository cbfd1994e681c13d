"""Every regex in the pack's own code is safe on hostile text: no nested quantifiers and no quantifier
followed by one that can take the same character (issue 5: `<lora:` + spaces froze a server for 22 s).

A regex engine that backtracks (Python's) goes super-linear when a failing match can split one run of
characters between two quantifiers in many ways: `(a+)+`, `\\d*\\.?\\d+`, `[^:]+?\\s*`. The check
parses each pattern with the standard library's own parser and walks the tree: a repeat inside a
repeat is refused, and so is a repeat whose characters overlap those that can come right after it
(through optional items). Patterns are found in the source with `ast`: any `re.<function>(...)` call
whose pattern is a string literal. The check itself is tested on patterns known to be bad and good.
"""
from __future__ import annotations

import ast
import os
import re
from typing import Any

import pytest

try:  # Python 3.11+
    import re._constants as C  # type: ignore[import-not-found]
    import re._parser as sre_parse  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as C  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

PACK_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACK_FOLDERS = ("selector", "metadata", "monitor", "client", "nodes")
PACK_FILES = ("__init__.py", "settings.py")
RE_FUNCTIONS = {"compile", "match", "fullmatch", "search", "sub", "subn", "split", "findall", "finditer"}
FLAG_NAMES = {"I": re.I, "IGNORECASE": re.I, "S": re.S, "DOTALL": re.S, "M": re.M, "MULTILINE": re.M,
              "X": re.X, "VERBOSE": re.X, "A": re.A, "ASCII": re.A}

# Characters to probe a character class with: ASCII, the spaces and digits of other scripts, letters.
PROBES = [chr(c) for c in range(128)] + list("\u00a0\u2003\u3000\u0660\u00e9\u00df\u4e2d\u0416\u2019\ue000")


def _in_class(item: tuple[Any, Any], ch: str, ignore_case: bool) -> bool:
    """Whether the one-character item (LITERAL, NOT_LITERAL, ANY, IN, CATEGORY) can take `ch`."""
    op, av = item
    chars = {c for c in (ch, ch.lower(), ch.upper()) if len(c) == 1} if ignore_case else {ch}
    if op is C.LITERAL:
        return any(ord(c) == av for c in chars)
    if op is C.NOT_LITERAL:
        return all(ord(c) != av for c in chars)
    if op is C.ANY:
        return True
    if op is C.CATEGORY:
        return bool(re.fullmatch(_CATEGORY_RE[av], ch))
    if op is C.IN:
        negate = bool(av) and av[0][0] is C.NEGATE
        members = av[1:] if negate else av
        hit = False
        for mop, mav in members:
            if mop is C.LITERAL:
                hit = any(ord(c) == mav for c in chars)
            elif mop is C.RANGE:
                hit = any(mav[0] <= ord(c) <= mav[1] for c in chars)
            elif mop is C.CATEGORY:
                hit = bool(re.fullmatch(_CATEGORY_RE[mav], ch))
            if hit:
                break
        return hit != negate
    return False


_CATEGORY_RE = {C.CATEGORY_DIGIT: r"\d", C.CATEGORY_NOT_DIGIT: r"\D", C.CATEGORY_SPACE: r"\s",
                C.CATEGORY_NOT_SPACE: r"\S", C.CATEGORY_WORD: r"\w", C.CATEGORY_NOT_WORD: r"\W"}
_REPEATS = (C.MAX_REPEAT, C.MIN_REPEAT) + ((C.POSSESSIVE_REPEAT,) if hasattr(C, "POSSESSIVE_REPEAT") else ())
_TRANSPARENT = (C.AT, C.ASSERT, C.ASSERT_NOT)


def _items(seq: Any) -> list[tuple[Any, Any]]:
    return list(seq.data if hasattr(seq, "data") else seq)


def _nullable(item: tuple[Any, Any]) -> bool:
    op, av = item
    if op in _TRANSPARENT:
        return True
    if op in _REPEATS:
        return av[0] == 0 or all(_nullable(i) for i in _items(av[2]))
    if op is C.SUBPATTERN:
        return all(_nullable(i) for i in _items(av[-1]))
    if op is C.BRANCH:
        return any(all(_nullable(i) for i in _items(b)) for b in av[1])
    return False


def _chars(item: tuple[Any, Any], ic: bool, first_only: bool) -> set[str]:
    """The probe characters `item` can take (anywhere, or as its first character)."""
    op, av = item
    if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN, C.CATEGORY):
        return {ch for ch in PROBES if _in_class(item, ch, ic)}
    if op in _REPEATS:
        return _seq_chars(_items(av[2]), ic, first_only)
    if op is C.SUBPATTERN:
        return _seq_chars(_items(av[-1]), ic, first_only)
    if op is C.BRANCH:
        return set().union(*(_seq_chars(_items(b), ic, first_only) for b in av[1]))
    if op is C.GROUPREF:
        return set(PROBES)  # a back-reference can be anything its group took
    return set()


def _seq_chars(seq: list[tuple[Any, Any]], ic: bool, first_only: bool) -> set[str]:
    out: set[str] = set()
    for item in seq:
        out |= _chars(item, ic, first_only)
        if first_only and not _nullable(item):
            break
    return out


def _is_loop(item: tuple[Any, Any]) -> bool:
    return item[0] in _REPEATS and item[1][1] > 1 and item[1][0] != item[1][1]


def problems(pattern: str, flags: int = 0, anchored: bool = False) -> list[str]:
    """What makes `pattern` unsafe on hostile text; empty when it is safe.

    `anchored`: the pattern is only ever tried at one place (`re.match`, `re.fullmatch`). Otherwise a
    search tries it at every start, so a loop that can run over the pattern's own first character
    and then fail (`<[^>]*>` on `<<<<`) rescans the same text from each of them."""
    parsed = sre_parse.parse(pattern, flags)
    ic = bool(parsed.state.flags & re.I)
    found: list[str] = []
    top = _items(parsed)
    anchored = anchored or (bool(top) and top[0][0] is C.AT and top[0][1] in (C.AT_BEGINNING, C.AT_BEGINNING_STRING))
    starts = set() if anchored else _seq_chars(top, ic, first_only=True)

    def walk(seq: list[tuple[Any, Any]], inside_loop: bool, follow: set[str]) -> None:
        """`follow`: the characters that can come right after the whole of `seq`."""
        for i, item in enumerate(seq):
            op, av = item
            rest = seq[i + 1:]
            after = _seq_chars(rest, ic, first_only=True) | (follow if all(_nullable(r) for r in rest) else set())
            if _is_loop(item):
                if inside_loop:
                    found.append("nested quantifiers")
                overlap = _chars(item, ic, first_only=False) & after
                if overlap:
                    found.append(f"quantifier followed by one that takes the same characters ({sorted(overlap)[:3]})")
                rescans = _chars(item, ic, first_only=False) & starts
                if rescans and not all(_nullable(r) for r in rest):
                    found.append(f"a failed search rescans from every {sorted(rescans)[:3]} the quantifier took")
                body = _items(av[2])
                walk(body, True, _seq_chars(body, ic, first_only=True) | after)
            elif op in _REPEATS:
                walk(_items(av[2]), inside_loop, after)
            elif op is C.SUBPATTERN:
                walk(_items(av[-1]), inside_loop, after)
            elif op is C.BRANCH:
                for b in av[1]:
                    walk(_items(b), inside_loop, after)
            elif op in (C.ASSERT, C.ASSERT_NOT):
                walk(_items(av[1]), inside_loop, set())

    walk(_items(parsed), False, set())
    return found


def _flags(node: ast.expr | None) -> int:
    if node is None:
        return 0
    if isinstance(node, ast.Attribute) and node.attr in FLAG_NAMES:
        return FLAG_NAMES[node.attr]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _flags(node.left) | _flags(node.right)
    return 0


def _pack_trees() -> list[tuple[str, ast.Module]]:
    files = [os.path.join(PACK_DIR, f) for f in PACK_FILES]
    for folder in PACK_FOLDERS:
        for dirpath, _dirs, names in os.walk(os.path.join(PACK_DIR, folder)):
            files += [os.path.join(dirpath, n) for n in names if n.endswith(".py")]
    trees = []
    for path in sorted(files):
        with open(path, encoding="utf-8") as f:
            trees.append((os.path.relpath(path, PACK_DIR), ast.parse(f.read(), path)))
    return trees


def unchecked_regex_uses() -> list[str]:
    """Uses of `re` that pack_patterns cannot read: a pattern that is not a literal, `re` under
    another name, `from re import ...`. Each would hide a pattern from the check."""
    out = []
    for rel, tree in _pack_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out += [f"{rel}:{node.lineno}: import re as {a.asname}" for a in node.names
                        if a.name == "re" and a.asname not in (None, "re")]
            elif isinstance(node, ast.ImportFrom) and node.module == "re":
                out.append(f"{rel}:{node.lineno}: from re import ...")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                  and node.func.attr in RE_FUNCTIONS
                  and not (node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))):
                out.append(f"{rel}:{node.lineno}: re.{node.func.attr} with a pattern that is not a string literal")
    return out


def pack_patterns() -> list[tuple[str, int, str, int, bool]]:
    """(file, line, pattern, flags, anchored) of every regex literal in the pack's own code."""
    out = []
    for rel, tree in _pack_trees():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.func.attr in RE_FUNCTIONS and node.args):
                continue
            pat = node.args[0]
            if not (isinstance(pat, ast.Constant) and isinstance(pat.value, str)):
                continue
            flag_arg = next((k.value for k in node.keywords if k.arg == "flags"), None)
            if flag_arg is None:
                index = 1 if node.func.attr == "compile" else {"sub": 3, "subn": 3, "split": 3}.get(node.func.attr, 2)
                flag_arg = node.args[index] if len(node.args) > index else None
            out.append((rel, node.lineno, pat.value, _flags(flag_arg),
                        node.func.attr in ("match", "fullmatch")))
    return out


BAD = [
    r"(a+)+", r"(?:\s*,)*", r"\d*\.?\d+", r"[^:<>]+?\s*", r"\s*,\s*(,\s*)+", r"(x|y+)*z", r"a*a*", r"\w+\s*\w+",
    r"<\s*(?:lora|lyco)\s*:\s*([^:<>]+?)\s*(?::\s*([^:<>]*?)\s*)?(?::[^<>]*)?>",  # the pattern of issue 5
    r"^(.*?):\s*(-?\d+(?:\.\d+)?)$", r".*.*=.*",
    r"<[^>]*>", r"(?i)</?(?:p|br|div)\b[^>]*>", r"\s*,", r"x\w+y",  # a failed search rescans the loop's text
]
GOOD = [
    r"[<>]", r"<[^<>]*>", r"[ \t]+", r":\s*[-+]?[0-9.]+\s*(?=[)\]}>])", r"\bembedding:\S+", r"\bBREAK\b",
    r"\\(.)", r"[,;.!?|\n()\[\]{}]+", r"[0-9a-f]{64}", r"[\s_\-]+",
    r"\s+", r"(?i)</?(?:p|br|div)\b[^<>]*>", r"x\w+",
]


@pytest.mark.parametrize("pattern", BAD)
def test_the_check_refuses_patterns_that_backtrack(pattern):
    assert problems(pattern), pattern


@pytest.mark.parametrize("pattern", GOOD)
def test_the_check_passes_safe_patterns(pattern):
    assert problems(pattern) == [], pattern


def test_an_anchored_pattern_is_tried_at_one_place_only():
    assert problems(r"\s*(\d{2,5})\s*[x×]\s*(\d{2,5})\s*")  # searched: each space starts a new try
    assert not problems(r"\s*(\d{2,5})\s*[x×]\s*(\d{2,5})\s*", anchored=True)
    assert not problems(r"^\s*x")


def test_the_check_sees_the_ignorecase_flag():
    assert problems(r"x[ab]+A", re.IGNORECASE)
    assert not problems(r"x[ab]+A")


def test_every_regex_of_the_pack_is_safe():
    patterns = pack_patterns()
    assert any(p[0].startswith("selector") for p in patterns)  # the search finds the pack's regexes
    bad = [f"{path}:{line} {pattern!r}: {'; '.join(found)}"
           for path, line, pattern, flags, anchored in patterns if (found := problems(pattern, flags, anchored))]
    assert not bad, "\n".join(bad)


def test_no_regex_of_the_pack_escapes_the_check():
    """Every pattern is a literal passed to `re.<function>`, so the check above sees all of them."""
    assert not unchecked_regex_uses(), "\n".join(unchecked_regex_uses())


def test_the_escape_finder_sees_aliases_and_computed_patterns(tmp_path, monkeypatch):
    code = "import re as regex\nfrom re import compile\nimport re\nP = 'a+'\nre.compile(P)\nre.search('ok', 'x')\n"
    (tmp_path / "mod.py").write_text(code, encoding="utf-8")
    monkeypatch.setitem(globals(), "PACK_DIR", str(tmp_path))
    monkeypatch.setitem(globals(), "PACK_FILES", ["mod.py"])
    monkeypatch.setitem(globals(), "PACK_FOLDERS", [])
    found = unchecked_regex_uses()
    assert [f.split(": ", 1)[1] for f in found] == [
        "import re as regex", "from re import ...", "re.compile with a pattern that is not a string literal"]
