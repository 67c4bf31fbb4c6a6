// STUB: to be implemented.
#include "core/template_index.h"
