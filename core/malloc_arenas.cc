#include "core/malloc_arenas.h"

#include <malloc.h>

#include <algorithm>
#include <thread>

namespace jigdoofus {

void LimitMallocArenas() {
#ifdef M_ARENA_MAX
  const unsigned cores = std::max(2u, std::thread::hardware_concurrency());
  (void)mallopt(M_ARENA_MAX, static_cast<int>(cores));
#endif
}

}  // namespace jigdoofus
