// STUB: to be implemented.
#include "core/literal_store.h"
