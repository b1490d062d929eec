"""The build enforces the layering: every `#include "..."` of a file under src/ must name a
file of its own CMake library or of a library that library may use, as its CMakeLists.txt
says (target_link_libraries). A source file may use its library's direct dependencies (public
or private) and what those expose publicly; a header only what its library exposes publicly
(PUBLIC / INTERFACE), since whoever includes it gets those includes too. So a front-end that
includes a storage header, or storage that includes a front-end, fails here (and in CI), not
in review.

Run: python3 tests/layering/check_layers.py [SRC_DIR]  (exit 1 on a violation)
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "src"))

CALL = re.compile(r"\b(add_library|target_link_libraries|add_executable|cellar_test)\s*\(([^)]*)\)",
                  re.S)
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def strip_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def read_cmake():
    """libraries: name -> source files (absolute); deps: name -> {visibility: [cellar_*]}."""
    libs, deps, tests = {}, {}, set()
    for root, _, files in os.walk(SRC):
        for f in files:
            if f != "CMakeLists.txt" and not f.endswith(".cmake"):
                continue
            with open(os.path.join(root, f)) as fh:
                text = strip_comments(fh.read())
            for kind, body in CALL.findall(text):
                words = body.split()
                if not words:
                    continue
                name, rest = words[0], words[1:]
                if kind in ("add_executable", "cellar_test"):
                    tests.add(name)
                    for w in rest:
                        if w.endswith(".cc"):
                            libs.setdefault(name, set()).add(os.path.join(root, w))
                elif kind == "add_library":
                    srcs = libs.setdefault(name, set())
                    for w in rest:
                        if w.endswith(".cc"):
                            srcs.add(os.path.join(root, w))
                    libs.setdefault(name, set())
                    # Headers live beside the sources (INTERFACE libraries: in their folder).
                    libs[name].add(os.path.join(root, "<dir>"))
                else:
                    vis = "PUBLIC"
                    d = deps.setdefault(name, {"PUBLIC": set(), "PRIVATE": set()})
                    for w in rest:
                        if w in ("PUBLIC", "INTERFACE"):
                            vis = "PUBLIC"
                        elif w == "PRIVATE":
                            vis = "PRIVATE"
                        elif w.startswith("cellar_"):
                            d[vis].add(w)
    return libs, deps, tests


def public_closure(lib, deps, seen=None):
    seen = set() if seen is None else seen
    if lib in seen:
        return seen
    seen.add(lib)
    for d in deps.get(lib, {}).get("PUBLIC", ()):
        public_closure(d, deps, seen)
    return seen


# Arrows that must never exist, whatever a CMakeLists.txt says (STYLE.md: wire code apart from
# the engine): (library prefix, library prefix it may not use).
FORBIDDEN = [
    ("cellar_frontend_", "cellar_storage_"),  # front-ends go through the gateway
    ("cellar_frontend_resp", "cellar_frontend_grpc"),  # front-ends do not know each other
    ("cellar_frontend_grpc", "cellar_frontend_resp"),
    ("cellar_storage_", "cellar_frontend_"),  # storage knows no wire
    ("cellar_storage_", "cellar_gateway"),
    ("cellar_storage_", "cellar_control"),
    ("cellar_topics", "cellar_frontend_"),
]


def main():
    libs, deps, tests = read_cmake()
    violations = []
    for lib in sorted(set(libs) - tests):
        reach = set()
        for d in deps.get(lib, {}).get("PUBLIC", set()) | deps.get(lib, {}).get("PRIVATE", set()):
            reach |= public_closure(d, deps)
        for a, b in FORBIDDEN:
            for r in sorted(reach):
                if lib.startswith(a) and r.startswith(b):
                    violations.append(f"{lib} links {r}: {a}* may never use {b}*")
    # A file's library: the one listing it as a source; else (a header) the library whose
    # sources or folder are in the file's folder. Generated protobuf headers: cellar_protos.
    by_file, by_dir = {}, {}
    for name, files in libs.items():
        if name in tests:
            continue
        for f in files:
            if f.endswith("<dir>"):
                by_dir.setdefault(os.path.dirname(f), set()).add(name)
            else:
                by_file[f] = name
                by_dir.setdefault(os.path.dirname(f), set()).add(name)

    def owner(path):
        if path in by_file:
            return {by_file[path]}
        return by_dir.get(os.path.dirname(path), set())

    checked = 0
    for root, _, files in os.walk(SRC):
        for f in sorted(files):
            if not f.endswith((".cc", ".h")) or f.endswith("_test.cc"):
                continue
            path = os.path.join(root, f)
            mine = owner(path)
            if not mine or (mine & tests):
                continue  # main() files and tests may use anything they link
            allowed = set()
            for lib in mine:
                allowed |= public_closure(lib, deps)
                if f.endswith(".cc"):
                    for d in deps.get(lib, {}).get("PRIVATE", ()):
                        allowed |= public_closure(d, deps)
            with open(path, errors="replace") as fh:
                includes = INCLUDE.findall(fh.read())
            for inc in includes:
                checked += 1
                if inc.endswith(".pb.h"):
                    # proto/etcd/ is its own library (the cluster must not need the
                    # front-end's protos); every other .proto is in cellar_protos.
                    theirs = {"cellar_etcd_protos" if inc.startswith("etcd/") else "cellar_protos"}
                else:
                    target = os.path.join(SRC, inc)
                    if not os.path.exists(target):
                        continue  # a system or generated header reached by quotes
                    theirs = owner(target)
                if theirs and not (theirs & allowed):
                    rel = os.path.relpath(path, SRC)
                    violations.append(f"{rel} includes \"{inc}\" ({'/'.join(sorted(theirs))}), "
                                      f"which {'/'.join(sorted(mine))} may not use "
                                      f"({'source' if f.endswith('.cc') else 'header'}: "
                                      f"{', '.join(sorted(allowed))})")
    for v in violations:
        print("LAYERING: " + v)
    print(f"layering: {checked} includes checked, {len(violations)} violations")
    print(f"{checked - len(violations)} passed, {len(violations)} failed")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
