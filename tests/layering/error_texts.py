"""What the error-text checks share (check_grpc_errors.py, check_resp_errors.py): each front-end
writes its error texts in one table (STYLE.md rule 3), and its check reads every other source
file of the front-end's folder, comments blanked out, for errors built in place. A check gives
the rules (a function from a Source to its findings); this module reads the files, finds string
literals and bracket groups, and reports. Unit tests (*_test.cc) are not read.
"""

import os
import sys

OPEN, CLOSE = "({[", ")}]"


def scan(text):
    """Blanks comments out of `text` (keeping line breaks) and finds its string literals and
    bracket groups. Returns (text, literal starts, {open index: close index})."""
    out, literals, groups, stack = [], [], {}, []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        # A quote after a digit or letter is a digit separator (1'000) or a prefix's (u8'x').
        if c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if c == '"':
                literals.append(i)
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
            continue
        if c in OPEN:
            stack.append(i)
        elif c in CLOSE and stack:
            groups[stack.pop()] = i
        out.append(c)
        i += 1
    return "".join(out), literals, groups


class Source:
    """One file, scanned: its text (comments blanked), its literals and bracket groups, and
    the findings the rules report on it."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as fh:
            self.text, self.literals, self.groups = scan(fh.read())
        self.found = set()

    def literal_at(self, start):
        """The literal starting at `start`, quotes included."""
        j = start + 1
        while j < len(self.text) and self.text[j] != '"':
            j += 2 if self.text[j] == "\\" else 1
        return self.text[start:j + 1]

    def literals_in(self, open_at):
        """The literals inside the bracket group that opens at `open_at`."""
        close = self.groups.get(open_at, len(self.text))
        return [self.literal_at(p) for p in self.literals if open_at < p < close]

    def has_literal(self, open_at):
        return bool(self.literals_in(open_at))

    def innermost_group(self, at):
        """Where the innermost bracket group holding `at` opens (None outside every group)."""
        return max((o for o, c in self.groups.items() if o < at < c), default=None)

    def report(self, at, what, open_at=None):
        if open_at is not None:
            end = self.groups.get(open_at, at + 60) + 1
        else:
            end = self.text.find("\n", at)
        snippet = " ".join(self.text[at:min(end, at + 120)].split())
        self.found.add((self.text.count("\n", 0, at) + 1, what, snippet))

    def findings(self):
        """One finding per line: (line, what, snippet)."""
        by_line = {}
        for line, what, snippet in sorted(self.found):
            by_line.setdefault(line, (line, what, snippet))
        return sorted(by_line.values())


def literal_statuses(src, status, code_arg):
    """The rules every front-end's check makes: a status built with a literal text (`status`
    matches one, its group 1 the opening bracket) and a code (`code_arg`'s group 1) passed with
    a literal to any call."""
    for m in status.finditer(src.text):
        if src.has_literal(m.start(1)):
            src.report(m.start(), "a Status with a literal text", m.start(1))
    for m in code_arg.finditer(src.text):
        # The innermost bracket group the code is an argument of.
        inner = src.innermost_group(m.start(1))
        if inner is not None and src.has_literal(inner):
            src.report(m.start(1), "a code passed with a literal text", inner)


def main(folder, tables, rules, entry):
    """Checks every .cc and .h under SRC_DIR/`folder` (SRC_DIR: the first argument, else this
    repository's src) but the table files and unit tests with `rules` (a function of a Source
    that calls its report). `entry` names what to add to the table instead. Returns the exit
    status."""
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "..", "src")
    src = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else default)
    where = os.path.join(src, folder)
    if not os.path.isdir(where):
        print(f"no {where}")
        return 1
    bad, checked = [], 0
    for name in sorted(os.listdir(where)):
        if not name.endswith((".cc", ".h")) or name in tables or name.endswith("_test.cc"):
            continue
        checked += 1
        source = Source(os.path.join(where, name))
        rules(source)
        for line, what, snippet in source.findings():
            bad.append(f"src/{folder}/{name}:{line}: {what}: {snippet}")
    table = " and ".join(tables)
    if bad:
        print(f"error texts built outside src/{folder}/{table} (add {entry} there):")
        print("\n".join(bad))
        return 1
    print(f"ok: {checked} files under src/{folder} take their error texts from {table}")
    return 0
