"""The RESP front-end writes its error texts in one table, src/frontend/resp/errors.{h,cc}
(STYLE.md rule 3): handlers name a RespError. This fails, listing them, on code under
src/frontend/resp that writes an error in place:
  - a Status given a message there (`Status(Code::kX, "...")`, `Status(Code::kX, kSomeText)`):
    a Status goes out as "ERR " + its message, so a message made here is a text made here;
  - a Code passed with a literal to any call (`fail(Code::kX, "...")`);
  - a raw error line, ReplyWriter::Error (`w.Error(...)`), whatever its argument;
  - a WriteError whose detail is a literal with words in it (a detail names a command, an
    option or a key as sent: "ping", "pubsub|help"; the text around it is the table's);
  - a literal that starts with a RESP error code ("ERR ...", "-ERR ...", "WRONGTYPE ...").
A code without text (`Status(Code::kWrongType)`) and the statuses of other layers passed
through (WriteStatus of an engine or topics status) are fine. Unit tests (*_test.cc) write
errors as they like. The file reading and reporting are shared with the gRPC check
(error_texts.py).

Run: python3 tests/layering/check_resp_errors.py [SRC_DIR]  (exit 1 on a violation)
"""

import os
import re
import sys

from error_texts import literal_statuses, main

# `Status(...)`, `Status{...}` and `Status st(...)`; not WriteStatus or StatusOr.
STATUS = re.compile(r"\bStatus(?:\s+\w+)?\s*([({])")
CODE_FIRST = re.compile(r"\s*Code::k\w+\s*,")
CODE_ARG = re.compile(r"[({,]\s*(Code::k\w+)")
RAW_LINE = re.compile(r"(?:\.|->)\s*Error\s*\(")
WRITE_ERROR = re.compile(r"\bWriteError\s*(\()")
ERROR_CODE = re.compile(
    r'^"-?(?:ERR|WRONGTYPE|NOAUTH|NOPERM|WRONGPASS|NOPROTO|OOM|EXECABORT|BUSY|LOADING|READONLY|'
    r'NOSCRIPT|MOVED|ASK|CROSSSLOT|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|MISCONF)\b')


def rules(src):
    literal_statuses(src, STATUS, CODE_ARG)
    for m in STATUS.finditer(src.text):
        # A message that is not a literal (a constant, a string built here) is one all the same.
        if not src.has_literal(m.start(1)) and CODE_FIRST.match(src.text, m.start(1) + 1):
            src.report(m.start(), "a Status given a message", m.start(1))
    for m in RAW_LINE.finditer(src.text):
        src.report(m.start(), "a raw error line (name a RespError: WriteError)", m.end() - 1)
    for m in WRITE_ERROR.finditer(src.text):
        if any(re.search(r"\s", lit[1:-1]) for lit in src.literals_in(m.start(1))):
            src.report(m.start(), "a WriteError with a text as its detail", m.start(1))
    for p in src.literals:
        if ERROR_CODE.match(src.literal_at(p)):
            src.report(p, "a literal holding a RESP error code")


if __name__ == "__main__":
    sys.exit(main(os.path.join("frontend", "resp"), ("errors.h", "errors.cc"), rules,
                  "a RespError"))
