// STUB: to be implemented.
#include "core/uri.h"
