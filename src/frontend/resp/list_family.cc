// Placeholder: filled in by the collections work.
#include "frontend/resp/commands.h"

namespace cellar::resp {

void RegisterListFamily(std::vector<CommandSpec>&) {}

}  // namespace cellar::resp
