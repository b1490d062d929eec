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
The file reading and reporting are shared with the RESP check (error_texts.py).

Run: python3 tests/layering/check_grpc_errors.py [SRC_DIR]  (exit 1 on a violation)
"""

import os
import re
import sys

from error_texts import literal_statuses, main

STATUS = re.compile(r"\b(?:Wire)?Status\s*([({])")
CODE_ARG = re.compile(r"[({,]\s*((?:Grpc)?Code::k\w+)")
FIELD = re.compile(r'\.(?:message|err)\s*=\s*(?:std::string\s*\(\s*)?"')
HELPER = re.compile(r'\bInvalid\s*\(\s*(?:std::string\s*\(\s*)?"')


def rules(src):
    literal_statuses(src, STATUS, CODE_ARG)
    for pattern, what in ((FIELD, "a wire field set to a literal"),
                          (HELPER, "an error helper with a literal")):
        for m in pattern.finditer(src.text):
            src.report(m.start(), what)


if __name__ == "__main__":
    sys.exit(main(os.path.join("frontend", "grpc"), ("errors.cc",), rules, "a GrpcError"))
