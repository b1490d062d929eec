#include "storage/types/entry_hash.h"

#include <random>

namespace cellar::storage {

uint64_t ElementHashSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace cellar::storage
