// STUB: to be implemented.
#include "fs/options.h"
