#pragma once

#include <string>
#include <string_view>

namespace zshard::checkpoint {

// Replaces `path` with `bytes` so that a crash at any moment leaves either
// the old file or the new one, never a torn one: writes "<path>.tmp.<pid>",
// fsyncs it, renames it over `path`, and fsyncs the directory. Throws
// IoError naming the path and the failing call.
void writeFileAtomically(const std::string& path, std::string_view bytes);

// The whole file. Throws IoError naming the path when it cannot be read.
std::string readFile(const std::string& path);

// SHA-256 of `bytes` as 64 lowercase hex digits (per-file checksums).
std::string sha256Hex(std::string_view bytes);

// readFile, then checks the checksum: throws IoError naming the file,
// the expected and the found digest when they differ (a corrupt shard).
std::string readVerified(const std::string& path, const std::string& expected_sha256);

}  // namespace zshard::checkpoint
