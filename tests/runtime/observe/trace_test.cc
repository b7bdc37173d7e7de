#include "runtime/observe/trace.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "runtime/config/json.h"

namespace zshard::observe {
namespace {

config::JsonValue readJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return config::parseJson(text.str());
}

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override { Trace::get().clear(); }
  void TearDown() override {
    Trace::get().setRecording(false);
    Trace::get().clear();
  }
  std::string path_ = (std::filesystem::temp_directory_path() /
                       ("trace_test_" + std::to_string(getpid()) + ".json"))
                          .string();
};

TEST_F(TraceTest, NothingIsRecordedWhileOff) {
  Trace::get().slice("x", "c", 1, 2);
  { TraceScope scope("y", "c"); }
  EXPECT_EQ(Trace::get().size(), 0u);
}

TEST_F(TraceTest, WritesChromeTraceEventsPerThread) {
  Trace::get().setRecording(true);
  Trace::get().nameThread("main");
  {
    TraceScope outer("outer \"quoted\"", "step");
    TraceScope inner("inner", "step");
  }
  std::thread other([] {
    Trace::get().nameThread("comm gloo");
    Trace::get().slice("reduce_scatter #0", "comm", 10, 20, "\"bytes\":64");
  });
  other.join();
  EXPECT_EQ(Trace::get().write(path_, 3), 3u);
  const config::JsonValue doc = readJson(path_);
  std::filesystem::remove(path_);
  const config::JsonValue* events = doc.find("traceEvents");
  ASSERT_NE(events, nullptr);
  std::map<int, std::string> names;
  std::map<std::string, const config::JsonValue*> slices;
  for (const config::JsonValue& e : events->items) {
    EXPECT_EQ(e.find("pid")->number, 3);
    if (e.find("ph")->isString("M") && e.find("name")->isString("thread_name")) {
      names[static_cast<int>(e.find("tid")->number)] = e.find("args")->find("name")->text;
    } else if (e.find("ph")->isString("X")) {
      slices[e.find("name")->text] = &e;
    }
  }
  ASSERT_EQ(slices.size(), 3u);
  const config::JsonValue& outer = *slices.at("outer \"quoted\"");
  const config::JsonValue& inner = *slices.at("inner");
  const config::JsonValue& comm = *slices.at("reduce_scatter #0");
  EXPECT_EQ(names.at(static_cast<int>(outer.find("tid")->number)), "main");
  EXPECT_EQ(names.at(static_cast<int>(comm.find("tid")->number)), "comm gloo");
  EXPECT_EQ(comm.find("ts")->number, 10);
  EXPECT_EQ(comm.find("dur")->number, 10);
  EXPECT_EQ(comm.find("args")->find("bytes")->number, 64);
  // The inner scope nests inside the outer one on the same thread.
  EXPECT_LE(outer.find("ts")->number, inner.find("ts")->number);
  EXPECT_GE(outer.find("ts")->number + outer.find("dur")->number,
            inner.find("ts")->number + inner.find("dur")->number);
  EXPECT_NE(doc.find("otherData")->find("clock_offset_us"), nullptr);
}

TEST_F(TraceTest, AnUnwritablePathIsAnErrorNamingIt) {
  try {
    Trace::get().write("/proc/no/such/dir/trace.json", 0);
    ADD_FAILURE();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/no/such/dir/trace.json"), std::string::npos);
  }
}

TEST(Json, EscapesControlCharactersAndQuotes) {
  EXPECT_EQ(jsonEscape("a\"b\\c\nd"), "a\\\"b\\\\c\\u000ad");
}

}  // namespace
}  // namespace zshard::observe
