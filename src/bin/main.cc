// The `cellar` binary: `cellar serve` runs the server; every other subcommand is the CLI.
#include <cstring>

#include "cli/cli.h"
#include "server/server.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "serve") == 0) {
    return cellar::server::ServeMain(argc - 1, argv + 1);
  }
  return cellar::cli::CliMain(argc, argv);
}
