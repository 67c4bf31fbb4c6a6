// STUB: to be implemented.
#include "fetch/slice_resolver.h"
