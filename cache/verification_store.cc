// STUB: to be implemented.
#include "cache/verification_store.h"
