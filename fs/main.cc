// jigdoofus [OPTIONS] SOURCE [SOURCE...] MOUNTPOINT -- see doc/jigdoofus.1.
#include <cstdio>

#include "core/malloc_arenas.h"
#include "fs/daemon.h"
#include "fs/options.h"

int main(int argc, char** argv) {
  jigdoofus::LimitMallocArenas();
  auto command_line = jigdoofus::ParseCommandLine(argc, argv);
  if (!command_line.ok()) {
    const std::string& msg = command_line.status().message();
    std::fprintf(stderr, msg.rfind("usage:", 0) == 0 ? "%s\n" : "jigdoofus: %s\n", msg.c_str());
    return 2;
  }
  if (command_line->help || command_line->version) return 0;
  return jigdoofus::RunJigdoofus(*command_line);
}
