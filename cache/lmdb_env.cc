// STUB: to be implemented.
#include "cache/lmdb_env.h"
