"""Reader tests: every lexical feature, every error (message and line:col), fuzzing."""

from __future__ import annotations

import math
import time
from fractions import Fraction

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
    SBytevector,
    SList,
    SVector,
    Symbol,
    Syntax,
    Vector,
    from_list,
)
from eshkol.syntax.diagnostics import EshkolError, Loc
from eshkol.syntax.reader import read_datums, read_syntax

S = Symbol


def one(text: str):
    """The single datum in ``text``."""
    forms = read_datums(text)
    assert len(forms) == 1, forms
    return forms[0]


def lst(*items, tail=NIL):
    return from_list(list(items), tail)


def err(text: str, file: str = "t.scm") -> EshkolError:
    with pytest.raises(EshkolError) as info:
        read_syntax(text, file)
    return info.value


def where(e: EshkolError) -> tuple[int, int]:
    return (e.loc.line, e.loc.col)


# ---- comments and whitespace ----------------------------------------------------------------


def test_line_comments() -> None:
    assert read_datums("; nothing\n a ; trailing\n b ;; end") == [S("a"), S("b")]
    assert read_datums(";") == []
    assert read_datums("") == []
    assert read_datums(" \t\r\n\f") == []


def test_block_comments_nest() -> None:
    assert read_datums("a #| one #| two |# still |# b") == [S("a"), S("b")]
    assert read_datums("#||#x") == [S("x")]
    assert read_datums("(a #| (( |# b)") == [lst(S("a"), S("b"))]


def test_datum_comments() -> None:
    assert read_datums("#;a b") == [S("b")]
    assert read_datums("(a #;(b c) d)") == [lst(S("a"), S("d"))]
    assert read_datums("(a #;b)") == [lst(S("a"))]  # just before ')'
    assert read_datums("(a #; b)") == [lst(S("a"))]
    assert read_datums("(#;#;a b c)") == [lst(S("c"))]  # comments nest
    assert read_datums("'#;a b") == [lst(S("quote"), S("b"))]
    assert read_datums("(a . #;b c)") == [Pair(S("a"), S("c"))]
    assert read_datums("(a . b #;c)") == [Pair(S("a"), S("b"))]
    assert read_datums("#;#(1 2) #;\"s\" x") == [S("x")]


def test_shebang_line() -> None:
    assert read_datums("#!/usr/bin/env eshkol\n(a)") == [lst(S("a"))]


# ---- lists, vectors, quotes ------------------------------------------------------------------


def test_lists_and_brackets() -> None:
    assert one("()") is NIL
    assert one("[]") is NIL
    assert one("(a [b c] (d))") == lst(S("a"), lst(S("b"), S("c")), lst(S("d")))
    assert one("(let ([x 1]) x)") == lst(S("let"), lst(lst(S("x"), 1)), S("x"))


def test_dotted_pairs() -> None:
    assert one("(a . b)") == Pair(S("a"), S("b"))
    assert one("(a b . c)") == lst(S("a"), S("b"), tail=S("c"))
    assert one("(a . (b))") == lst(S("a"), S("b"))
    assert one("[a . b]") == Pair(S("a"), S("b"))
    assert one("(a .b)") == lst(S("a"), S(".b"))  # `.b` is a symbol, not a dot
    assert one("(1 .5)") == lst(1, 0.5)


def test_quote_forms() -> None:
    assert one("'x") == lst(S("quote"), S("x"))
    assert one("`x") == lst(S("quasiquote"), S("x"))
    assert one(",x") == lst(S("unquote"), S("x"))
    assert one(",@x") == lst(S("unquote-splicing"), S("x"))
    assert one("''x") == lst(S("quote"), lst(S("quote"), S("x")))
    assert one("`(a ,b ,@(c))") == lst(
        S("quasiquote"),
        lst(S("a"), lst(S("unquote"), S("b")), lst(S("unquote-splicing"), lst(S("c")))),
    )
    assert one("' x") == lst(S("quote"), S("x"))
    assert read_datums("a'b") == [S("a"), lst(S("quote"), S("b"))]


def test_quote_locations() -> None:
    (stx,) = read_syntax("\n  'foo", "q.scm")
    assert stx.loc == Loc("q.scm", 2, 3)
    assert isinstance(stx.e, SList)
    quote, foo = stx.e.items
    assert quote.e is S("quote") and quote.loc == Loc("q.scm", 2, 3)
    assert foo.e is S("foo") and foo.loc == Loc("q.scm", 2, 4)
    (stx,) = read_syntax(",@x", "q.scm")
    assert [x.loc.col for x in stx.e.items] == [1, 3]


def test_vectors_and_bytevectors() -> None:
    assert one("#(1 a \"s\")") == Vector([1, S("a"), "s"])
    assert one("#()") == Vector([])
    assert one("#(#(1) ())") == Vector([Vector([1]), NIL])
    assert one("#u8(1 2 255)") == Bytevector(bytes([1, 2, 255]))
    assert one("#u8()") == Bytevector(b"")
    assert one("#U8(#xff #;3)") == Bytevector(b"\xff")
    (stx,) = read_syntax("#(1 2)", "v")
    assert isinstance(stx.e, SVector) and len(stx.e.items) == 2
    (stx,) = read_syntax("#u8(7)", "v")
    assert isinstance(stx.e, SBytevector) and stx.e.data == b"\x07"


# ---- atoms -----------------------------------------------------------------------------------


def test_booleans() -> None:
    assert read_datums("#t #f #true #false") == [True, False, True, False]
    assert type(one("#t")) is bool


def test_eof_and_void_objects() -> None:
    assert one("#!eof") is EOF
    assert one("#!void") is UNSPECIFIED
    assert one("#!default") is UNSPECIFIED


@pytest.mark.parametrize(
    "text,value",
    [
        ("#\\a", "a"),
        ("#\\A", "A"),
        ("#\\space", " "),
        ("#\\newline", "\n"),
        ("#\\tab", "\t"),
        ("#\\nul", "\0"),
        ("#\\null", "\0"),
        ("#\\alarm", "\a"),
        ("#\\backspace", "\b"),
        ("#\\delete", "\x7f"),
        ("#\\escape", "\x1b"),
        ("#\\return", "\r"),
        ("#\\x41", "A"),
        ("#\\x3bb", "λ"),
        ("#\\x", "x"),
        ("#\\X", "X"),
        ("#\\(", "("),
        ("#\\)", ")"),
        ("#\\;", ";"),
        ("#\\\"", '"'),
        ("#\\ ", " "),
        ("#\\λ", "λ"),
        ("#\\#", "#"),
        ("#\\\\", "\\"),
    ],
)
def test_characters(text: str, value: str) -> None:
    assert one(text) == Char(value)


def test_character_delimiting() -> None:
    assert one("(#\\a)") == lst(Char("a"))
    assert one("(#\\))") == lst(Char(")"))
    assert read_datums("#\\(a") == [Char("("), S("a")]


def test_strings() -> None:
    assert one('"abc"') == "abc"
    assert one('""') == ""
    assert one(r'"a\nb\tc\rd\ae\bf\0g"') == "a\nb\tc\rd\ae\bf\0g"
    assert one(r'"q\"q\\q\|q"') == 'q"q\\q|q'
    assert one(r'"\x41;\x3bb;"') == "Aλ"
    assert one('"multi\nline"') == "multi\nline"
    assert one('"λ☃"') == "λ☃"
    assert one('"abc \\\n     def"') == "abc def"  # line continuation
    assert one('"abc\\   \n\tdef"') == "abcdef"
    assert one('"a\\\r\n  b"') == "ab"


def test_symbols() -> None:
    assert read_datums("Foo foo") == [S("Foo"), S("foo")]  # case-sensitive
    assert read_datums("+ - ... ->x 1+ -> <=? a.b |x|") == [
        S(x) for x in ["+", "-", "...", "->x", "1+", "->", "<=?", "a.b", "x"]
    ]
    assert one("|odd symbol|") == S("odd symbol")
    assert one("||") == S("")
    assert one(r"|a\|b\x41;\\|") == S("a|bA\\")
    assert one("a#b") == S("a#b")
    assert one("λ") == S("λ")
    assert one("{x}") == S("{x}")


def test_fold_case_directive() -> None:
    assert read_datums("#!fold-case ABC #!no-fold-case ABC") == [S("abc"), S("ABC")]


@pytest.mark.parametrize(
    "text,value",
    [
        ("0", 0),
        ("42", 42),
        ("-17", -17),
        ("+5", 5),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("1/3", Fraction(1, 3)),
        ("-2/4", Fraction(-1, 2)),
        ("4/2", 2),
        ("0/5", 0),
        ("#x1F", 31),
        ("#XfF", 255),
        ("#b101", 5),
        ("#o17", 15),
        ("#d10", 10),
        ("#x-a", -10),
        ("#x1/a", Fraction(1, 10)),
        ("#x#e1F", 31),
        ("#e#x1F", 31),
        ("#e1.5", Fraction(3, 2)),
        ("#e1e3", 1000),
        ("#e-1.25e-1", Fraction(-1, 8)),
        ("#e.5", Fraction(1, 2)),
        ("#e1/2", Fraction(1, 2)),
        ("#d#e1.5", Fraction(3, 2)),
    ],
)
def test_exact_numbers(text: str, value: object) -> None:
    got = one(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    "text,value",
    [
        ("1.5", 1.5),
        ("-2e-3", -0.002),
        (".5", 0.5),
        ("1.", 1.0),
        ("1e10", 1e10),
        ("1E10", 1e10),
        ("-0.0", -0.0),
        ("+.5", 0.5),
        ("6.02e+23", 6.02e23),
        ("1e400", math.inf),
        ("#i1/3", 1 / 3),
        ("#i5", 5.0),
        ("#x#i10", 16.0),
        ("#i#x10", 16.0),
        ("+inf.0", math.inf),
        ("-inf.0", -math.inf),
        ("#i+inf.0", math.inf),
    ],
)
def test_inexact_numbers(text: str, value: float) -> None:
    got = one(text)
    assert type(got) is float and got == value
    assert math.copysign(1, got) == math.copysign(1, value)


def test_nan() -> None:
    for text in ["+nan.0", "-nan.0", "#i+nan.0"]:
        got = one(text)
        assert type(got) is float and math.isnan(got)


def test_huge_numbers() -> None:
    digits = "7" * 10000  # beyond CPython's 4300-digit int(str) limit
    assert one(digits) == 7 * (10**10000 - 1) // 9
    assert one("-" + digits + "/2") == Fraction(-one(digits), 2)
    assert one("#i" + digits) == math.inf


def test_number_like_symbols() -> None:
    for text in ["1+", "1-", "+a", "-a", "1a", "1/2/3", "1e", "1.2.3", "..", "+-1", "1/2.", "0x10"]:
        assert one(text) == S(text), text


# ---- locations ------------------------------------------------------------------------------


def test_locations() -> None:
    text = "(define (f x)\n  (+ x\t1))\n\n  \"s\n t\" λλ sym"
    forms = read_syntax(text, "loc.scm")
    assert [f.loc for f in forms] == [
        Loc("loc.scm", 1, 1),
        Loc("loc.scm", 4, 3),
        Loc("loc.scm", 5, 5),
        Loc("loc.scm", 5, 8),
    ]
    define, head, body = forms[0].e.items
    assert define.loc == Loc("loc.scm", 1, 2)
    assert head.loc == Loc("loc.scm", 1, 9)
    assert [x.loc.col for x in head.e.items] == [10, 12]
    assert body.loc == Loc("loc.scm", 2, 3)
    assert [(x.loc.line, x.loc.col) for x in body.e.items] == [(2, 4), (2, 6), (2, 8)]


def test_locations_after_comments_and_specials() -> None:
    text = "#| a\n b |# x ; c\n #;(y\n) z #\\a #(1\n 2) |p\nq| w"
    forms = read_syntax(text, "c")
    assert [syntax_pos(f) for f in forms] == [(2, 7), (4, 3), (4, 5), (4, 9), (5, 5), (6, 4)]
    vec = forms[3]
    assert [syntax_pos(x) for x in vec.e.items] == [(4, 11), (5, 2)]


def syntax_pos(s: Syntax) -> tuple[int, int]:
    return (s.loc.line, s.loc.col)


def test_dotted_tail_location() -> None:
    (stx,) = read_syntax("(a .\n b)", "d")
    assert stx.e.tail is not None and syntax_pos(stx.e.tail) == (2, 2)


# ---- errors ---------------------------------------------------------------------------------


def test_unbalanced_close() -> None:
    e = err("(a) )")
    assert e.message == "unbalanced parenthesis: unexpected ')'"
    assert where(e) == (1, 5)
    assert err("\n  ]").message == "unbalanced parenthesis: unexpected ']'"


def test_unterminated_list_points_at_opener() -> None:
    e = err("(define (f x)\n  (+ x 1)\n")
    assert e.message == "unterminated list: expected ')' (opened here)"
    assert where(e) == (1, 1)
    e = err("(a (b\n  [c")
    assert e.message == "unterminated list: expected ']' (opened here)"
    assert where(e) == (2, 3)
    e = err(" #(1 2")
    assert e.message == "unterminated vector: expected ')' (opened here)"
    assert where(e) == (1, 2)
    assert err("#u8(1").message == "unterminated bytevector: expected ')' (opened here)"


def test_mismatched_brackets() -> None:
    e = err("(a\n  b]")
    assert e.message == "mismatched bracket: expected ')' to close '(' at t.scm:1:1, got ']'"
    assert where(e) == (2, 4)
    e = err("[a)")
    assert e.message == "mismatched bracket: expected ']' to close '[' at t.scm:1:1, got ')'"
    assert "expected ')'" in err("#(1]").message


def test_string_errors() -> None:
    e = err('(a\n  "abc')
    assert e.message == "unterminated string"
    assert where(e) == (2, 3)
    assert err('"abc\\').message == "unterminated string"
    e = err('"ab\\qc"')
    assert e.message == "bad escape '\\q' in string"
    assert where(e) == (1, 4)
    assert err('"\\x41"').message.startswith("bad escape '\\x41\"' in string")
    assert err('"\\xZZ;"').message.startswith("bad escape '\\xZ' in string")
    assert err('"\\xD800;"').message.startswith("bad escape")
    assert err('"\\x110000;"').message.startswith("bad escape")
    assert err('"a\\ b"').message == "bad escape '\\ b' in string"


def test_symbol_errors() -> None:
    assert err("|abc").message == "unterminated |symbol|: expected '|'"
    assert err("|a\\qb|").message == "bad escape '\\q' in symbol"


def test_block_comment_errors() -> None:
    e = err("a\n #| x #| y |# z")
    assert e.message.startswith("unterminated block comment")
    assert where(e) == (2, 2)


def test_character_errors() -> None:
    e = err("(#\\foo)")
    assert e.message.startswith("bad character name")
    assert where(e) == (1, 2)
    assert err("#\\").message.startswith("bad character name")
    assert err("#\\xZZ").message.startswith("bad character name")
    assert err("#\\xd800").message.startswith("bad character name")
    assert err("#\\Space").message.startswith("bad character name")


@pytest.mark.parametrize(
    "text", ["1/0", "-5/0", "#xZZ", "#x", "#e+inf.0", "#e+nan.0", "#x1.5", "#b2", "#e#e1",
             "#x#o1", "#i1/0", "#e1e999999999", "#o8"],
)
def test_bad_numbers(text: str) -> None:
    e = err(" " + text)
    assert e.message == f"bad number syntax '{text}'"
    assert where(e) == (1, 2)


def test_dot_errors() -> None:
    for text in [".", "( . a)", "#(a . b)", "(a . b . c)", "'.", "(a . . b)"]:
        assert err(text).message == "unexpected '.'", text
    e = err("(a . )")
    assert e.message == "unexpected ')': expected a datum after '.'"
    assert where(e) == (1, 6)
    e = err("(a . b c)")
    assert e.message == "unexpected datum after the dotted tail: expected ')'"
    assert where(e) == (1, 8)


def test_prefix_errors() -> None:
    e = err("(a ')")
    assert e.message == "unexpected ')': expected a datum after '''"
    assert where(e) == (1, 5)
    assert err("(a #;)").message == "unexpected ')': expected a datum after '#;'"
    e = err("x\n ,@")
    assert e.message == "unexpected end of input: expected a datum after ',@'"
    assert where(e) == (2, 2)
    assert err("#;").message == "unexpected end of input: expected a datum after '#;'"


def test_hash_errors() -> None:
    assert err("#").message == "bad '#' syntax '#'"
    assert err("#foo").message == "bad '#' syntax '#foo'"
    assert err("#tru").message == "bad '#' syntax '#tru'"
    assert err("#u8 (1)").message == "bad '#' syntax '#u8'"
    assert err("#!bogus").message == "bad '#!' syntax '#!bogus'"
    e = err("#u8(1 256)")
    assert e.message == "bad bytevector element: expected an exact integer 0..255"
    assert where(e) == (1, 7)
    assert err("#u8(a)").message.startswith("bad bytevector element")
    assert err("#u8(1.0)").message.startswith("bad bytevector element")
    assert err("#u8(#t)").message.startswith("bad bytevector element")


def test_error_render_has_caret() -> None:
    e = err("(a\n  \"b\\q\")", "render.scm")
    assert e.render() == (
        "render.scm:2:5: error: bad escape '\\q' in string\n  \"b\\q\")\n    ^"
    )


# ---- robustness and speed -------------------------------------------------------------------


def test_deep_nesting() -> None:
    depth = 50_000
    (d,) = read_datums("(" * depth + ")" * depth)
    for _ in range(depth - 1):
        assert isinstance(d, Pair) and d.cdr is NIL
        d = d.car
    assert d is NIL
    (v,) = read_datums("#(" * 3000 + ")" * 3000)
    assert isinstance(v, Vector)
    assert read_datums("'" * 5000 + "x")[0].car is S("quote")
    assert err("(" * 10000).message.startswith("unterminated list")


def test_large_file_reads_quickly() -> None:
    chunk = (
        "(define (fib n) ; classic\n  (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n"
        '(display "hello, world\\n") (list 1 2.5 \'sym #\\a #(1 2 3) `(a ,b ,@c) 1/3)\n'
    )
    text = chunk * (1_000_000 // len(chunk))
    start = time.process_time()
    forms = read_syntax(text, "big.scm")
    elapsed = time.process_time() - start
    assert len(forms) == 3 * (1_000_000 // len(chunk))
    assert forms[-1].loc.line == 3 * (1_000_000 // len(chunk))
    # Generous: this guards against quadratic behaviour, not against a slow machine.
    assert elapsed < 10


_TOKENS = [
    "(", ")", "[", "]", "#(", "#u8(", "'", "`", ",", ",@", ".", "#;", "#|", "|#", '"', "\\",
    "#\\", "|", ";", "\n", " ", "\t", "a", "x1", "1", "-", "+", "1/0", "1/2", "#x", "#e", "#i",
    "#b1", "1.5e3", "+inf.0", "#t", "#f", "#true", "#!eof", "#!", "\\x41;", "\\n", "x41", "space",
    "#", "λ", "\0", "\ufffd", "e", "inf.0", "...", "@",
]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        read_datums(text, "fuzz")
    except EshkolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=40))
def test_token_soup_never_crashes(tokens: list[str]) -> None:
    try:
        forms = read_syntax("".join(tokens), "soup")
    except EshkolError as e:
        assert e.loc.file == "soup" and e.loc.line >= 1 and e.loc.col >= 1
        e.render()
    else:
        for f in forms:
            assert isinstance(f, Syntax)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("()[]#\\|\"';`,.@ ae1x/u8!"), max_size=30))
def test_punctuation_soup_never_crashes(text: str) -> None:
    try:
        read_datums(text)
    except EshkolError:
        pass
