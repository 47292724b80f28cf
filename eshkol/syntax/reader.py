"""The reader: Eshkol source text → syntax objects (or plain datums).

A hand-rolled scanner walks the string with an index and an explicit stack of open forms, so
deeply nested input cannot overflow the Python stack and a 1 MB file reads in a fraction of a
second. Every malformed input raises ``EshkolError`` with the location of the offending
character; no other exception escapes (the reader is fuzzed with random bytes).
"""

from __future__ import annotations

import gc
import math
import re
from bisect import bisect_right
from fractions import Fraction
from typing import Any

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
    syntax_to_datum,
)
from eshkol.syntax.diagnostics import EshkolError, Loc, register_source

__all__ = ["CHAR_NAMES", "BadNumber", "parse_number", "read_datums", "read_syntax"]

# Atoms end at whitespace (\s) and at ( ) [ ] " ; ' ` , |. R7RS makes `|` a delimiter; the
# quote characters are too, as in Chez, so `a'b` is two forms.
_ATOM = re.compile(r"[^\s()\[\]\";'`,|]+")
_BLOCK_COMMENT_MARK = re.compile(r"\|#|#\|")
_STRING_STOP = re.compile(r'["\\]')
_SYMBOL_STOP = re.compile(r"[|\\]")
_HEX = re.compile(r"[0-9a-fA-F]+")
# One token per match; `lastindex` says which kind. Every character starts some alternative.
# Whitespace and line comments before a token are part of its match.
_TOKEN = re.compile(
    r"\s*(?:;[^\n]*\s*)*"  # unambiguous, so a failing match cannot backtrack badly
    r"(?:([^\s()\[\]\";'`,|#][^\s()\[\]\";'`,|]*)"  # 1 symbol, number or '.'
    r"|([(\[])|([)\]])"  # 2 ( [   3 ) ]
    r"|\"([^\"\\]*)\"|(\")"  # 4 string without escapes   5 any other string
    r"|(,@|[',`])"  # 6 ' ` , ,@
    r"|(#\\(?:[^\s()\[\]\";'`,|][^\s()\[\]\";'`,|]*|[\s\S]))"  # 7 #\char
    r"|(#\()|(#[uU]8\()|(#;)"  # 8 #(   9 #u8(   10 #;
    r"|(#[^\s()\[\]\";'`,|\\!#][^\s()\[\]\";'`,|]*)"  # 11 #t #f #x1F ...
    r"|(#)|(\|)|\Z)"  # 12 any other '#' (block comment, #!...)   13 |symbol|
)
(_T_ATOM, _T_OPEN, _T_CLOSE, _T_PLAIN_STRING, _T_STRING, _T_PREFIX, _T_CHAR, _T_VECTOR,
 _T_BYTEVECTOR, _T_DATUM_COMMENT, _T_HASH_ATOM, _T_HASH, _T_BAR) = range(1, 14)
_NUMBER_START = frozenset("0123456789+-.")

# Named characters accepted after `#\` (R7RS names plus `nul`, as Chez writes it).
CHAR_NAMES: dict[str, str] = {
    "alarm": "\a",
    "backspace": "\b",
    "delete": "\x7f",
    "escape": "\x1b",
    "newline": "\n",
    "null": "\0",
    "nul": "\0",
    "return": "\r",
    "space": " ",
    "tab": "\t",
}

_STRING_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "0": "\0",
    "\\": "\\",
    '"': '"',
    "|": "|",
}

_QUOTE = Symbol("quote")
_QUASIQUOTE = Symbol("quasiquote")
_UNQUOTE = Symbol("unquote")
_UNQUOTE_SPLICING = Symbol("unquote-splicing")
_PREFIXES = {"'": _QUOTE, "`": _QUASIQUOTE, ",": _UNQUOTE, ",@": _UNQUOTE_SPLICING}

# Loc is a frozen dataclass whose generated __init__ is slow; the reader makes one per token,
# so it fills the slots directly (same object, same equality and hash).
_LOC_NEW = Loc.__new__
_LOC_FILE = Loc.__dict__["file"].__set__
_LOC_LINE = Loc.__dict__["line"].__set__
_LOC_COL = Loc.__dict__["col"].__set__


# ---- numbers ------------------------------------------------------------------------------


class BadNumber(Exception):
    """Raised by ``parse_number`` for text that is number syntax but denotes no number."""


_RADIX_DIGITS = {2: "01", 8: "0-7", 10: "0-9", 16: "0-9a-fA-F"}
_INT_OR_RATIO = {
    r: re.compile(rf"([+-]?)([{d}]+)(?:/([{d}]+))?\Z") for r, d in _RADIX_DIGITS.items()
}
# Digits are spelled [0-9] because \d (and int()) would also accept non-ASCII digits.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_DECIMAL_PARTS = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?\Z")
_SPECIAL_FLOATS = {
    "+inf.0": math.inf,
    "-inf.0": -math.inf,
    "+nan.0": math.nan,
    "-nan.0": math.nan,
}
_RADIX_PREFIX = {"x": 16, "b": 2, "o": 8, "d": 10}
# Exact decimals with exponents beyond this would build absurdly large integers (and hang).
_MAX_EXACT_EXPONENT = 100_000
# CPython refuses int(str) beyond 4300 decimal digits; longer literals are split in halves.
_INT_CHUNK = 4000


def _decimal_to_int(s: str) -> int:
    """``int(s)`` for a string of ASCII decimal digits of any length."""
    if len(s) <= _INT_CHUNK:
        return int(s)
    half = len(s) // 2
    return _decimal_to_int(s[:-half]) * 10**half + _decimal_to_int(s[-half:])


def _to_float(v: int | Fraction) -> float:
    """An exact number as the nearest float, ±inf when it is out of range."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _exact(v: int | Fraction) -> int | Fraction:
    """Normalise an exact rational: integers are ``int``."""
    if isinstance(v, Fraction) and v.denominator == 1:
        return v.numerator
    return v


def parse_number(tok: str) -> int | Fraction | float | None:
    """Parse ``tok`` as a number literal (with optional ``#e #i #x #b #o #d`` prefixes).

    Returns None when ``tok`` is not number syntax (it is then a symbol, unless prefixed).
    Raises ``BadNumber`` for prefixed text that is not a number and for a zero denominator.
    """
    radix: int | None = None
    exactness: str | None = None
    i = 0
    while tok.startswith("#", i):
        p = tok[i + 1 : i + 2].lower()
        if p in _RADIX_PREFIX and p and radix is None:
            radix = _RADIX_PREFIX[p]
        elif p in ("e", "i") and exactness is None:
            exactness = p
        else:
            raise BadNumber(tok)
        i += 2
    value = _parse_real(tok[i:], radix or 10, exactness)
    if value is None and i > 0:
        raise BadNumber(tok)
    return value


def _parse_real(body: str, radix: int, exactness: str | None) -> int | Fraction | float | None:
    """The unprefixed part of a number literal; see ``parse_number``."""
    if not body:
        return None
    c = body[0]
    if radix == 10 and not (c.isascii() and (c.isdigit() or c in "+-.")):
        return None  # fast exit for the common case: an ordinary symbol
    special = _SPECIAL_FLOATS.get(body.lower())
    if special is not None:
        if exactness == "e":
            raise BadNumber(body)
        return special
    m = _INT_OR_RATIO[radix].match(body)
    if m:
        sign, num, den = m.groups()
        n = _decimal_to_int(num) if radix == 10 else int(num, radix)
        value: int | Fraction = n
        if den is not None:
            d = _decimal_to_int(den) if radix == 10 else int(den, radix)
            if d == 0:
                raise BadNumber(body)
            value = _exact(Fraction(n, d))
        if sign == "-":
            value = -value
        return _to_float(value) if exactness == "i" else value
    if radix != 10 or not _DECIMAL.match(body):
        return None
    if exactness != "e":
        return float(body)
    # Exact decimal: mantissa digits scaled by a power of ten, computed without floats.
    dm = _DECIMAL_PARTS.match(body)
    assert dm is not None  # _DECIMAL matched, so the looser pattern does too
    sign, whole, frac, exp = dm.groups()
    frac = frac or ""
    e = (int(exp) if exp else 0) - len(frac)
    if abs(e) > _MAX_EXACT_EXPONENT:
        raise BadNumber(body)
    mant = _decimal_to_int((whole + frac) or "0")
    value = _exact(Fraction(mant * 10**e) if e >= 0 else Fraction(mant, 10**-e))
    return -value if sign == "-" else value


# ---- the reader ---------------------------------------------------------------------------

# Kinds of open forms on the reader's stack.
_LIST, _VECTOR, _BYTEVECTOR, _PREFIX, _SKIP = range(5)


class _Frame:
    """An open form: a list/vector waiting for its close, or a prefix waiting for a datum."""

    __slots__ = ("close", "dot", "items", "kind", "pos", "sym", "tail", "text")

    def __init__(self, kind: int, pos: int, close: str = ")", sym: Symbol | None = None,
                 text: str = "") -> None:
        self.kind = kind
        self.pos = pos  # index of the opening character (for "opened here" diagnostics)
        self.close = close
        self.items: list[Syntax] = []
        self.tail: Syntax | None = None
        # 0: no '.', 1: '.' seen, tail expected, 2: tail read, ')' expected; -1 for prefix
        # and #; frames, so that the reader's fast path (dot == 0: append) skips them.
        self.dot = 0 if kind <= _BYTEVECTOR else -1
        self.sym = sym  # for a prefix: quote / quasiquote / unquote / unquote-splicing
        self.text = text  # how the prefix was spelled, for messages


class _Reader:
    """One pass over one source text."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.n = len(text)
        self.line_starts = [0]
        self.line_starts.extend(m.end() for m in re.finditer("\n", text))
        self.stack: list[_Frame] = []
        self.out: list[Syntax] = []
        self.fold_case = False

    # -- locations and errors --

    def loc(self, pos: int) -> Loc:
        """The line:col of string index ``pos`` (columns count characters)."""
        line = bisect_right(self.line_starts, pos)
        loc = _LOC_NEW(Loc)
        _LOC_FILE(loc, self.file)
        _LOC_LINE(loc, line)
        _LOC_COL(loc, pos - self.line_starts[line - 1] + 1)
        return loc

    def error(self, pos: int, message: str) -> EshkolError:
        return EshkolError(self.loc(pos), message)

    # -- the main loop --

    def read_all(self) -> list[Syntax]:
        """Read every top-level form."""
        # The hot paths (symbols, numbers, parentheses, plain strings) are inlined here: this
        # loop runs once per token, and method calls would dominate the reading time. Tokens
        # come from one `finditer` (matches are contiguous: every character starts some
        # alternative); constructs scanned by hand restart the iterator after themselves.
        text, n, stack, out = self.text, self.n, self.stack, self.out
        file, line_starts = self.file, self.line_starts
        finditer = _TOKEN.finditer
        symtab = Symbol._table
        new_loc, set_file, set_line, set_col = _LOC_NEW, _LOC_FILE, _LOC_LINE, _LOC_COL
        # The line containing the current token: [line_start, next_line_start).
        line, line_start, next_line_start, nlines = 1, 0, -1, len(line_starts)
        i = 0
        if text.startswith(("#!/", "#! ")):
            # A Unix script line (`#!/usr/bin/env eshkol`) on the first line is a comment.
            j = text.find("\n")
            i = n if j < 0 else j + 1
        restart = True
        while restart:
            restart = False
            for m in finditer(text, i):
                k = m.lastindex
                j = m.end()
                value: Any
                if k == _T_ATOM:
                    tok = m.group(k)
                    i = j - len(tok)
                    if tok[0] in _NUMBER_START:
                        if tok == ".":
                            self.read_dot(i)
                            continue
                        if tok.isdigit() and tok.isascii() and len(tok) < _INT_CHUNK:
                            value = int(tok)
                        else:
                            try:
                                value = parse_number(tok)
                            except BadNumber:
                                raise self.error(i, f"bad number syntax '{tok}'") from None
                            if value is None:
                                value = Symbol(tok.casefold() if self.fold_case else tok)
                    elif self.fold_case:
                        value = Symbol(tok.casefold())
                    else:
                        value = symtab.get(tok) or Symbol(tok)
                elif k == _T_CLOSE:
                    i = j - 1
                    f = stack[-1] if stack else None
                    if f is None or f.kind != _LIST or f.close != text[i] or f.dot == 1:
                        self.close(i, text[i])  # vectors, bytevectors and every error
                        continue
                    stack.pop()
                    value = SList(f.items, f.tail)
                    i = f.pos
                elif k == _T_OPEN:
                    stack.append(_Frame(_LIST, j - 1, ")" if text[j - 1] == "(" else "]"))
                    continue
                elif k == _T_PLAIN_STRING:
                    value = m.group(k)
                    i = j - len(value) - 2
                elif k == _T_PREFIX:
                    tok = m.group(k)
                    stack.append(_Frame(_PREFIX, j - len(tok), sym=_PREFIXES[tok], text=tok))
                    continue
                elif k == _T_CHAR:
                    tok = m.group(k)
                    i = j - len(tok)
                    value = Char(tok[2]) if len(tok) == 3 else self.char_value(tok[2:], i)
                elif k == _T_HASH_ATOM:
                    tok = m.group(k)
                    i = j - len(tok)
                    value = self.hash_atom(tok, i)
                elif k == _T_VECTOR:
                    stack.append(_Frame(_VECTOR, j - 2))
                    continue
                elif k == _T_BYTEVECTOR:
                    stack.append(_Frame(_BYTEVECTOR, j - 4))
                    continue
                elif k == _T_DATUM_COMMENT:
                    stack.append(_Frame(_SKIP, j - 2))
                    continue
                else:
                    # Scanned by hand: strings with escapes, |symbols|, everything after '#'.
                    i = j - 1
                    if k == _T_STRING:
                        value, j = self.read_delimited(i, '"', _STRING_STOP, "string")
                    elif k == _T_BAR:
                        name, j = self.read_delimited(i, "|", _SYMBOL_STOP, "symbol")
                        value = Symbol(name)
                    elif k == _T_HASH:
                        i = self.read_hash(i)
                        restart = True
                        break
                    else:  # only whitespace and comments were left
                        break
                    # The iterator must resume after the hand-scanned token.
                    restart = True
                # Deliver `value`, which starts at index i (and ends at j). Loc(file, line,
                # col) is built without the frozen dataclass's slow __init__.
                if i >= next_line_start or i < line_start:
                    # Usually one step forward; after a close paren `i` is the opening
                    # position, which may lie on an earlier line.
                    line = bisect_right(line_starts, i)
                    line_start = line_starts[line - 1]
                    next_line_start = line_starts[line] if line < nlines else n + 1
                loc = new_loc(Loc)
                set_file(loc, file)
                set_line(loc, line)
                set_col(loc, i - line_start + 1)
                stx = Syntax(value, loc)
                if stack:
                    f = stack[-1]
                    if f.dot == 0:
                        f.items.append(stx)
                    else:
                        self.emit(stx)
                else:
                    out.append(stx)
                if restart:
                    i = j
                    break
        if stack:
            self.unterminated(stack[-1])
        return out

    def read_dot(self, i: int) -> None:
        """The ``.`` of a dotted pair at index ``i``."""
        f = self.stack[-1] if self.stack else None
        if f is None or f.kind != _LIST or f.dot != 0 or not f.items:
            raise self.error(i, "unexpected '.'")
        f.dot = 1

    def unterminated(self, f: _Frame) -> None:
        """Raise the end-of-input error for the innermost open form ``f``."""
        if f.kind == _PREFIX:
            raise self.error(f.pos, f"unexpected end of input: expected a datum after '{f.text}'")
        if f.kind == _SKIP:
            raise self.error(f.pos, "unexpected end of input: expected a datum after '#;'")
        what = {_LIST: "list", _VECTOR: "vector", _BYTEVECTOR: "bytevector"}[f.kind]
        raise self.error(f.pos, f"unterminated {what}: expected '{f.close}' (opened here)")

    # -- building forms --

    def emit(self, stx: Syntax) -> None:
        """Deliver a completed datum to the innermost open form (or the top level)."""
        stack = self.stack
        while stack:
            f = stack[-1]
            if f.kind == _PREFIX:
                # 'x → (quote x); the inserted symbol carries the quote character's location.
                stack.pop()
                loc = self.loc(f.pos)
                stx = Syntax(SList([Syntax(f.sym, loc), stx]), loc)
                continue
            if f.kind == _SKIP:
                stack.pop()  # the datum after #; is discarded
                return
            if f.dot == 0:
                f.items.append(stx)
            elif f.dot == 1:
                f.tail = stx
                f.dot = 2
            else:
                raise EshkolError(stx.loc, "unexpected datum after the dotted tail: expected ')'")
            return
        self.out.append(stx)

    def close(self, i: int, c: str) -> None:
        """Handle a closing ``)`` or ``]`` at index ``i``."""
        stack = self.stack
        if not stack:
            raise self.error(i, f"unbalanced parenthesis: unexpected '{c}'")
        f = stack[-1]
        if f.kind == _PREFIX:
            raise self.error(i, f"unexpected '{c}': expected a datum after '{f.text}'")
        if f.kind == _SKIP:
            raise self.error(i, f"unexpected '{c}': expected a datum after '#;'")
        if c != f.close:
            opener = {")": "(", "]": "["}[f.close] if f.kind == _LIST else "#("
            if f.kind == _BYTEVECTOR:
                opener = "#u8("
            raise self.error(
                i,
                f"mismatched bracket: expected '{f.close}' to close '{opener}' at "
                f"{self.loc(f.pos)}, got '{c}'",
            )
        if f.dot == 1:
            raise self.error(i, f"unexpected '{c}': expected a datum after '.'")
        stack.pop()
        loc = self.loc(f.pos)
        if f.kind == _LIST:
            self.emit(Syntax(SList(f.items, f.tail), loc))
        elif f.kind == _VECTOR:
            self.emit(Syntax(SVector(f.items), loc))
        else:
            data = bytearray()
            for item in f.items:
                v = item.e
                if type(v) is not int or not 0 <= v <= 255:
                    raise EshkolError(
                        item.loc, "bad bytevector element: expected an exact integer 0..255"
                    )
                data.append(v)
            self.emit(Syntax(SBytevector(bytes(data)), loc))

    # -- atoms --

    def read_delimited(self, i: int, quote: str, stop: re.Pattern[str], what: str
                       ) -> tuple[str, int]:
        """A string ``"..."`` or symbol ``|...|`` starting at ``i``; returns (text, end)."""
        text = self.text
        parts: list[str] = []
        j = i + 1
        while True:
            m = stop.search(text, j)
            if m is None:
                raise self.error(i, f"unterminated {what}" if what == "string"
                                 else "unterminated |symbol|: expected '|'")
            k = m.start()
            parts.append(text[j:k])
            if text[k] == quote:
                return "".join(parts), k + 1
            ch, j = self.read_escape(k, what, i)
            parts.append(ch)

    def read_escape(self, k: int, what: str, start: int) -> tuple[str, int]:
        """The escape at backslash index ``k``; returns (replacement, index after it)."""
        text = self.text
        if k + 1 >= self.n:
            raise self.error(start, f"unterminated {what}")
        e = text[k + 1]
        simple = _STRING_ESCAPES.get(e)
        if simple is not None:
            return simple, k + 2
        if e == "x" or e == "X":
            m = _HEX.match(text, k + 2)
            end = m.end() if m else k + 2
            if m and text.startswith(";", end):
                code = int(m.group(), 16)
                if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                    return chr(code), end + 1
            raise self.error(
                k, f"bad escape '\\x{text[k + 2:end + 1]}' in {what}: expected '\\xHH;'"
            )
        if e in " \t\r\n":
            # Line continuation: \ <spaces> newline <spaces> vanishes.
            j = k + 1
            while j < self.n and text[j] in " \t":
                j += 1
            if text.startswith("\r\n", j):
                j += 1
            if j < self.n and text[j] == "\n":
                j += 1
                while j < self.n and text[j] in " \t":
                    j += 1
                return "", j
            shown = "\\" + text[k + 1 : j + 1]
        else:
            shown = "\\" + e
        raise self.error(k, f"bad escape '{shown}' in {what}")

    def read_hash(self, i: int) -> int:
        """The rarer forms starting with ``#`` (block comments, ``#!`` directives, errors).

        ``#(``, ``#u8(``, ``#;``, characters, booleans and prefixed numbers are tokens of the
        main loop. Returns the index after the form.
        """
        text = self.text
        c = text[i + 1 : i + 2]
        if c == "|":
            return self.skip_block_comment(i)
        if c == "\\":
            raise self.error(i, "bad character name: end of input after '#\\'")
        if c == "!":
            m = _ATOM.match(text, i + 2)
            name = m.group() if m else ""
            end = m.end() if m else i + 2
            if name == "eof":
                self.emit(Syntax(EOF, self.loc(i)))
            elif name in ("void", "default"):
                self.emit(Syntax(UNSPECIFIED, self.loc(i)))
            elif name in ("fold-case", "no-fold-case"):
                self.fold_case = name == "fold-case"  # R7RS directives act as comments
            else:
                raise self.error(i, f"bad '#!' syntax '#!{name}'")
            return end
        m = _ATOM.match(text, i)
        raise self.error(i, f"bad '#' syntax '{m.group() if m else '#'}'")

    def hash_atom(self, tok: str, i: int) -> Any:
        """The value of a ``#`` token at ``i``: a boolean or a prefixed number."""
        if tok.startswith("#:") and len(tok) > 2:  # #:name, a keyword (Eshkol v1.x)
            return Symbol(tok)
        low = tok.lower()
        if low in ("#t", "#true"):
            return True
        if low in ("#f", "#false"):
            return False
        if low[1] in "eixbod":
            try:
                value = parse_number(tok)
            except BadNumber:
                value = None
            if value is None:
                raise self.error(i, f"bad number syntax '{tok}'")
            return value
        raise self.error(i, f"bad '#' syntax '{tok}'")

    def char_value(self, name: str, i: int) -> Char:
        """The character named ``name`` (the text after ``#\\``, 2+ characters) at ``i``."""
        ch = CHAR_NAMES.get(name.casefold() if self.fold_case else name)
        if ch is None and name[0] in "xX" and _HEX.fullmatch(name, 1):
            code = int(name[1:], 16)
            if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
                ch = chr(code)
        if ch is None:
            raise self.error(i, f"bad character name '#\\{name}'")
        return Char(ch)

    def skip_block_comment(self, i: int) -> int:
        """Skip a (nesting) ``#| ... |#`` comment opened at ``i``; returns the index after it."""
        depth = 1
        j = i + 2
        while depth:
            m = _BLOCK_COMMENT_MARK.search(self.text, j)
            if m is None:
                raise self.error(i, "unterminated block comment: expected '|#' (opened here)")
            depth += 1 if m.group() == "#|" else -1
            j = m.end()
        return j


def read_syntax(text: str, file: str) -> list[Syntax]:
    """Read all top-level forms of ``text`` as syntax objects located in ``file``.

    Raises ``EshkolError`` (and nothing else) on malformed input.
    """
    register_source(file, text)
    # The reader allocates many objects and no cycles; the cyclic GC would rescan the growing
    # heap over and over (making a 1 MB file several times slower), so pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Reader(text, file).read_all()
    finally:
        if gc_was_enabled:
            gc.enable()


def read_datums(text: str, file: str = "<string>") -> list[Any]:
    """Read all top-level forms of ``text`` as plain datums (locations stripped)."""
    forms = read_syntax(text, file)
    out = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as in read_syntax
    try:
        for s in forms:
            try:
                out.append(syntax_to_datum(s))  # recursive, and fast for ordinary nesting
            except RecursionError:
                out.append(_strip(s))
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


def _strip(root: Syntax) -> Any:
    """``syntax_to_datum`` without recursion, so arbitrarily deep nesting is fine."""
    # Post-order walk: ("visit", stx) expands a node, ("build", stx) assembles it from the
    # already-converted children on `values`.
    values: list[Any] = []
    work: list[tuple[bool, Syntax]] = [(False, root)]
    while work:
        built, s = work.pop()
        e = s.e
        if isinstance(e, SList):
            if built:
                tail = values.pop() if e.tail is not None else NIL
                k = len(e.items)
                items = values[len(values) - k :] if k else []
                del values[len(values) - k :]
                out = tail
                for x in reversed(items):
                    out = Pair(x, out)
                values.append(out)
            else:
                work.append((True, s))
                if e.tail is not None:
                    work.append((False, e.tail))
                work.extend((False, x) for x in reversed(e.items))
        elif isinstance(e, SVector):
            if built:
                k = len(e.items)
                items = values[len(values) - k :] if k else []
                del values[len(values) - k :]
                values.append(Vector(items))
            else:
                work.append((True, s))
                work.extend((False, x) for x in reversed(e.items))
        elif isinstance(e, SBytevector):
            values.append(Bytevector(e.data))
        else:
            values.append(e)
    return values[0]
