// STUB: to be implemented.
#include "fetch/file_slice.h"
