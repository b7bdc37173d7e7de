#include "runtime/observe/tfrecord.h"

#include <gtest/gtest.h>

#include <cstring>

namespace zshard::observe {
namespace {

uint32_t littleEndian32(const std::string& s, size_t at) {
  uint32_t v = 0;
  std::memcpy(&v, s.data() + at, 4);  // x86-64 and aarch64 are little-endian
  return v;
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);              // the CRC-32C check value
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);    // RFC 3720, B.4
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);  // RFC 3720, B.4
}

TEST(Crc32c, MaskIsTfRecords) {
  const uint32_t crc = crc32c("abc");
  EXPECT_EQ(maskedCrc32c("abc"), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(TfRecord, FrameIsLengthCrcDataCrc) {
  const std::string data = "an event";
  const std::string frame = tfrecordFrame(data);
  ASSERT_EQ(frame.size(), 8 + 4 + data.size() + 4);
  uint64_t length = 0;
  std::memcpy(&length, frame.data(), 8);
  EXPECT_EQ(length, data.size());
  EXPECT_EQ(littleEndian32(frame, 8), maskedCrc32c(frame.substr(0, 8)));
  EXPECT_EQ(frame.substr(12, data.size()), data);
  EXPECT_EQ(littleEndian32(frame, 12 + data.size()), maskedCrc32c(data));
}

}  // namespace
}  // namespace zshard::observe
