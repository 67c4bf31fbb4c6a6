// STUB: to be implemented.
#include "fetch/image_set.h"
