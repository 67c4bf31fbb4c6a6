// STUB: to be implemented.
#include "fetch/scan_source.h"
