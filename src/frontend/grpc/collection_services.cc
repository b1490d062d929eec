// Placeholder: filled in by the collections work.
#include "frontend/grpc/services.h"

namespace cellar::grpc {

std::span<const Method> CollectionMethods() { return {}; }

}  // namespace cellar::grpc
