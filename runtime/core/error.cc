#include "runtime/core/error.h"

namespace zshard {

std::string expectedGot(const std::string& expected, const std::string& found,
                        const std::string& advice) {
  std::string message = "expected " + expected + ", got " + found;
  if (!advice.empty()) message += "; " + advice;
  return message;
}

}  // namespace zshard
