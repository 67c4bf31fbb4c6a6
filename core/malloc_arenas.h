// LimitMallocArenas: one glibc malloc arena per core instead of eight.
//
// glibc gives threads that allocate concurrently arenas of their own (up to
// 8 per core) and keeps what is freed in them. The download threads'
// buffers (4 MiB transfer inboxes before, LMDB's 256 KiB overflow pages)
// stayed there: after a cold read of the 1 GB bench image from a local
// mirror the daemon held 75-100 MiB of anonymous memory with the default,
// 34 MiB with 2 arenas (2 cores), and the read was no slower (2.97 s
// against 3.06-3.34 s). Call first thing in main(), before any thread.
#pragma once

namespace jigdoofus {

void LimitMallocArenas();

}  // namespace jigdoofus
