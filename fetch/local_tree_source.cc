// STUB: to be implemented.
#include "fetch/local_tree_source.h"
