// The `cellar` command line for everything except `serve`: cache administration over the admin
// HTTP API and get/set/delete over RESP. See `cellar --help`.
//
// `serve` is listed in the help but not run here: main() should hand `cellar serve ...` to the
// server before calling CliMain (CliMain answers `serve` with an error and exit code 2).
#pragma once

namespace cellar::cli {

// Returns the process exit code: 0 success, 1 failure (unreachable server, error answer, missing
// key for `get`), 2 usage errors.
int CliMain(int argc, char** argv);

}  // namespace cellar::cli
