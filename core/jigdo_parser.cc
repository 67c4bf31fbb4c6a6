// STUB: to be implemented.
#include "core/jigdo_file.h"
