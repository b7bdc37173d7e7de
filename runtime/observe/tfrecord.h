#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zshard::observe {

// CRC-32C (Castagnoli), as TFRecord files use it.
uint32_t crc32c(std::string_view bytes);
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t maskedCrc32c(std::string_view bytes);
// One TFRecord: uint64 length, masked CRC of the length, the data, masked
// CRC of the data (all little-endian).
std::string tfrecordFrame(std::string_view data);

}  // namespace zshard::observe
