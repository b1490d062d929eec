"""The gRPC front-end writes its error texts in one table, src/frontend/grpc/errors.cc (STYLE.md
rule 3): handlers name a GrpcError. This fails, listing them, on code under src/frontend/grpc
that builds an error in place with a string literal:
  - a Status or WireStatus whose arguments hold a literal (`Status(Code::kX, "...")`,
    `WireStatus{GrpcCode::kX, "...", "err"}`);
  - a Code or GrpcCode passed with a literal to any call (`fail(Code::kX, "...")`);
  - a wire status's `.message` or `.err` set to a literal;
  - an `Invalid("...")` helper.
A code without text (`Status(Code::kDeadlineExceeded)`) and the texts of other layers passed
through (gateway::kOverloadedText) are fine. Unit tests (*_test.cc) build statuses as they like.

Run: python3 tests/layering/check_grpc_errors.py [SRC_DIR]  (exit 1 on a violation)
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "src"))
GRPC = os.path.join(SRC, "frontend", "grpc")
TABLE = "errors.cc"

STATUS = re.compile(r"\b(?:Wire)?Status\s*([({])")
CODE_ARG = re.compile(r"[({,]\s*((?:Grpc)?Code::k\w+)")
FIELD = re.compile(r'\.(?:message|err)\s*=\s*(?:std::string\s*\(\s*)?"')
HELPER = re.compile(r'\bInvalid\s*\(\s*(?:std::string\s*\(\s*)?"')
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


def check_file(path):
    with open(path, encoding="utf-8") as fh:
        text, literals, groups = scan(fh.read())
    found = set()

    def has_literal(open_at):
        close = groups.get(open_at, len(text))
        return any(open_at < p < close for p in literals)

    def report(at, what, open_at=None):
        end = groups.get(open_at, at + 60) + 1 if open_at is not None else text.find("\n", at)
        snippet = " ".join(text[at:min(end, at + 120)].split())
        found.add((text.count("\n", 0, at) + 1, what, snippet))

    for m in STATUS.finditer(text):
        if has_literal(m.start(1)):
            report(m.start(), "a Status with a literal text", m.start(1))
    for m in CODE_ARG.finditer(text):
        # The innermost bracket group the code is an argument of.
        at = m.start(1)
        inner = max((o for o, c in groups.items() if o < at < c), default=None)
        if inner is not None and has_literal(inner):
            report(at, "a code passed with a literal text", inner)
    for pattern, what in ((FIELD, "a wire field set to a literal"),
                          (HELPER, "an error helper with a literal")):
        for m in pattern.finditer(text):
            report(m.start(), what)
    by_line = {}
    for line, what, snippet in sorted(found):  # one report per line
        by_line.setdefault(line, (line, what, snippet))
    return sorted(by_line.values())


def main():
    if not os.path.isdir(GRPC):
        print(f"no {GRPC}")
        return 1
    bad, checked = [], 0
    for name in sorted(os.listdir(GRPC)):
        if not name.endswith((".cc", ".h")) or name == TABLE or name.endswith("_test.cc"):
            continue
        checked += 1
        for line, what, snippet in check_file(os.path.join(GRPC, name)):
            bad.append(f"src/frontend/grpc/{name}:{line}: {what}: {snippet}")
    if bad:
        print("error texts built outside src/frontend/grpc/errors.cc (add a GrpcError there):")
        print("\n".join(bad))
        return 1
    print(f"ok: {checked} files under src/frontend/grpc take their error texts from {TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
