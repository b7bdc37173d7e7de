#include "runtime/observe/tfrecord.h"

#include <array>

namespace zshard::observe {

namespace {

std::array<uint32_t, 256> makeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    table[i] = c;
  }
  return table;
}

void putLittleEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  static const std::array<uint32_t, 256> table = makeTable();
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

uint32_t maskedCrc32c(std::string_view bytes) {
  const uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string tfrecordFrame(std::string_view data) {
  std::string length;
  putLittleEndian(length, data.size(), 8);
  std::string out = length;
  putLittleEndian(out, maskedCrc32c(length), 4);
  out.append(data);
  putLittleEndian(out, maskedCrc32c(data), 4);
  return out;
}

}  // namespace zshard::observe
