// Placeholder: filled in by the collections work.
#include "frontend/resp/commands.h"

namespace cellar::resp {

void RegisterZSetFamily(std::vector<CommandSpec>&) {}

}  // namespace cellar::resp
