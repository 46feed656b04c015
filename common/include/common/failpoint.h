#pragma once
// Failpoints for fault tests: named places where a process can be told to die, so a test can kill it
// exactly between two steps (e.g. after a commit and before its publish) instead of hoping a SIGKILL
// lands there. The environment variable CHAT_FAILPOINTS holds a comma-separated list of names; a
// listed failpoint ends the process at once with _exit(kFailpointExitCode) (no destructors, no
// flushing: as a crash would). Unset (every production run), a failpoint costs one load of a flag.
namespace chat {

constexpr int kFailpointExitCode = 86;

// Thread-safe.
void Failpoint(const char* name);

}  // namespace chat
