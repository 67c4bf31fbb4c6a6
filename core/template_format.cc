// STUB: to be implemented.
#include "core/template_format.h"
