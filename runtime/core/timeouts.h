#pragma once

#include <chrono>

namespace zshard {

// The job's two timeouts, written once here.
// - collective: how long a collective (or a peer's check before one) may
//   wait before it is a hang and is reported, naming the ranks behind;
// - store I/O: how long a store request waits for the server's answer
//   (beyond the wait it asked for) before the server counts as stalled.
// Set for a run by ZSHARD_COLLECTIVE_TIMEOUT / ZSHARD_STORE_TIMEOUT
// (seconds; zlaunch's --collective-timeout / --store-timeout set them for
// its workers); the config's zshard.timeouts.collective wins over the
// variable for the engine.
inline constexpr std::chrono::milliseconds kDefaultCollectiveTimeout{300000};
inline constexpr std::chrono::milliseconds kDefaultStoreIoTimeout{30000};

// The variable's value, or the default; Error naming the variable when it
// is not a number of seconds in (0, 86400].
std::chrono::milliseconds collectiveTimeout();
std::chrono::milliseconds storeIoTimeout();

}  // namespace zshard
