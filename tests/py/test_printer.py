"""Printer tests: exact display/write output, and write → read round trips."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eshkol.syntax.datum import (
    EOF,
    NIL,
    UNSPECIFIED,
    Bytevector,
    Char,
    Pair,
    Symbol,
    Vector,
    from_list,
)
from eshkol.syntax.printer import display_string, format_double, write_string
from eshkol.syntax.reader import read_datums

S = Symbol

# Chez Scheme's output for each of these doubles (measured).
CHEZ_DOUBLES = [
    "1.0", "10.0", "1234567890.0", "9999999999.5", "1e10", "1.5e10", "1.23456789012e11", "0.001",
    "0.0012", "9.99e-4", "1e-4", "1.2e-4", "1e-7", "0.1", "0.3333333333333333", "-0.0", "-1234.5",
    "1e21", "1.1805916207174113e21", "1.2345678901234567e19", "4.503599627370496e15",
    "1.7976931348623157e308", "5e-324", "+inf.0", "-inf.0", "+nan.0", "1e100",
]


@pytest.mark.parametrize("text", CHEZ_DOUBLES)
def test_format_double_matches_chez(text: str) -> None:
    value = float(text.replace("inf.0", "inf").replace("nan.0", "nan"))
    assert format_double(value) == text
    assert write_string(value) == text
    assert display_string(value) == text


def test_more_doubles() -> None:
    assert format_double(0.0) == "0.0"
    assert format_double(2.0) == "2.0"
    assert format_double(-0.5) == "-0.5"
    assert format_double(123.456) == "123.456"
    assert format_double(1e9) == "1000000000.0"
    assert format_double(-1e10) == "-1e10"
    assert format_double(1.5e-10) == "1.5e-10"
    assert format_double(1 / 3 * 1e-3) == "3.333333333333333e-4"
    assert format_double(-math.nan) == "+nan.0"


def test_exact_numbers() -> None:
    assert write_string(42) == "42"
    assert write_string(-7) == "-7"
    assert write_string(10**30) == "1" + "0" * 30
    huge = 7 * (10**10000 - 1) // 9  # past CPython's 4300-digit str() limit
    assert write_string(huge) == "7" * 10000
    assert write_string(-huge) == "-" + "7" * 10000
    assert write_string(Fraction(1, 3)) == "1/3"
    assert write_string(Fraction(-22, 7)) == "-22/7"


def test_simple_atoms() -> None:
    assert write_string(True) == "#t"
    assert write_string(False) == "#f"
    assert write_string(NIL) == "()"
    assert write_string(UNSPECIFIED) == ""
    assert display_string(UNSPECIFIED) == ""
    assert write_string(EOF) == "#<eof>"


def test_lists_and_vectors() -> None:
    assert write_string(from_list([1, 2, 3])) == "(1 2 3)"
    assert write_string(from_list([1, 2], 3)) == "(1 2 . 3)"
    assert write_string(Pair(1, 2)) == "(1 . 2)"
    assert write_string(from_list([from_list([]), from_list([S("a")])])) == "(() (a))"
    assert write_string(from_list([S("quote"), S("x")])) == "(quote x)"
    assert write_string(Vector([1, 2, 3])) == "#(1 2 3)"
    assert write_string(Vector([])) == "#()"
    assert write_string(Vector([Vector([1.0, 2.0]), from_list([3])])) == "#(#(1.0 2.0) (3))"
    assert write_string(Bytevector(bytes([1, 2]))) == "#u8(1 2)"
    assert write_string(Bytevector(b"")) == "#u8()"


def test_strings() -> None:
    assert display_string("a\"b\\c\n") == "a\"b\\c\n"
    assert write_string("a\"b\\c") == '"a\\"b\\\\c"'
    assert write_string("a\nb\tc\rd") == '"a\\nb\\tc\\rd"'
    assert write_string("\x00\x07\x1b\x7f") == '"\\x0;\\x7;\\x1b;\\x7f;"'
    assert write_string("λ ☃ |#") == '"λ ☃ |#"'
    assert display_string(from_list(["a b", Char("c")])) == "(a b c)"
    assert write_string(from_list(["a b", Char("c")])) == '("a b" #\\c)'


def test_chars() -> None:
    assert display_string(Char("a")) == "a"
    assert write_string(Char("a")) == "#\\a"
    assert write_string(Char(" ")) == "#\\space"
    assert write_string(Char("\n")) == "#\\newline"
    assert write_string(Char("\t")) == "#\\tab"
    assert write_string(Char("\0")) == "#\\nul"
    assert write_string(Char("\x7f")) == "#\\x7f"
    assert write_string(Char("\x07")) == "#\\x7"
    assert write_string(Char("\r")) == "#\\xd"
    assert write_string(Char("\xa0")) == "#\\xa0"
    assert write_string(Char("(")) == "#\\("
    assert write_string(Char("λ")) == "#\\λ"
    assert display_string(Char("\n")) == "\n"


@pytest.mark.parametrize(
    "name,written",
    [
        ("abc", "abc"),
        ("Abc", "Abc"),
        ("+", "+"),
        ("...", "..."),
        ("->x", "->x"),
        ("1+", "1+"),
        ("a.b", "a.b"),
        ("λ", "λ"),
        ("", "||"),
        ("a b", "|a b|"),
        ("a(b", "|a(b|"),
        ("a|b", "|a\\|b|"),
        ("a\\b", "a\\b"),
        ("#foo", "|#foo|"),
        ("a#", "a#"),
        ("1", "|1|"),
        ("-1.5", "|-1.5|"),
        ("+inf.0", "|+inf.0|"),
        ("1/0", "|1/0|"),
        (".", "|.|"),
        ("a'b", "|a'b|"),
        ('a"b', '|a"b|'),
        ("a;b", "|a;b|"),
        ("a\nb", "|a\\nb|"),
        ("\x01", "|\\x1;|"),
    ],
)
def test_symbols(name: str, written: str) -> None:
    assert write_string(S(name)) == written
    assert display_string(S(name)) == name
    assert read_datums(written) == [S(name)]


# ---- round trips -----------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Structural equality that tells 1 from 1.0 from #t, -0.0 from 0.0, and nan == nan."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, Pair):
        while isinstance(a, Pair) and isinstance(b, Pair):
            if not same(a.car, b.car):
                return False
            a, b = a.cdr, b.cdr
        return same(a, b)
    if isinstance(a, Vector):
        return len(a.items) == len(b.items) and all(map(same, a.items, b.items))
    return a == b if not isinstance(a, Symbol) else a is b


_symbol_names = st.one_of(
    st.from_regex(r"[a-z!$%&*/:<=>?^_~][a-z0-9!$%&*/:<=>?^_~+.@-]{0,8}", fullmatch=True),
    st.sampled_from(["+", "-", "...", "->x", "1+", "", ".", "1", "1/0", "+inf.0", "#x", "a b"]),
    st.text(max_size=8),
)
_atoms = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.fractions().filter(lambda f: f.denominator != 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.characters().map(Char),
    st.sampled_from([Char(c) for c in " \n\t\0\x7f\r()#\\|\"x"]),
    _symbol_names.map(Symbol),
    st.booleans(),
    st.just(NIL),
    st.binary(max_size=6).map(Bytevector),
)


def _compound(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=5).map(from_list),
        st.tuples(st.lists(children, min_size=1, max_size=4), children).map(
            lambda t: from_list(*t)
        ),
        st.lists(children, max_size=4).map(Vector),
    )


datums = st.recursive(_atoms, _compound, max_leaves=15)


@settings(max_examples=200, deadline=None)
@given(datums)
def test_write_read_round_trip(d: Any) -> None:
    text = write_string(d)
    back = read_datums(text)
    assert len(back) == 1, text
    assert same(back[0], d), text


@settings(max_examples=50, deadline=None)
@given(st.lists(datums, max_size=3))
def test_round_trip_of_several_forms(ds: list[Any]) -> None:
    text = " ".join(write_string(d) for d in ds)
    back = read_datums(text)
    assert len(back) == len(ds)
    assert all(map(same, back, ds)), text


@settings(max_examples=200, deadline=None)
@given(st.floats())
def test_float_text_reads_back_exactly(x: float) -> None:
    text = format_double(x)
    assert same(read_datums(text)[0], x)
    assert "." in text or "e" in text or "n" in text  # always looks inexact


def test_deeply_nested_data_prints() -> None:
    depth = 50_000
    d: Any = NIL
    for _ in range(depth):
        d = Pair(d, NIL)
    assert write_string(d) == "(" * depth + "()" + ")" * depth
    assert write_string(Vector([Vector([])] * 3)) == "#(#() #() #())"
