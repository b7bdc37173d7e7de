#include "runtime/config/json.h"

#include <gtest/gtest.h>

#include "runtime/core/error.h"

namespace zshard::config {
namespace {

using Kind = JsonValue::Kind;

std::string parseError(const std::string& text) {
  try {
    parseJson(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(parsed)";
}

TEST(Json, ParsesNestedDocumentInOrder) {
  const JsonValue v = parseJson(R"({"b": [1, -2.5e3, true, null], "a": {"s": "x"}})");
  ASSERT_EQ(v.kind, Kind::kObject);
  ASSERT_EQ(v.members.size(), 2u);
  EXPECT_EQ(v.members[0].first, "b");
  const JsonValue& arr = v.members[0].second;
  ASSERT_EQ(arr.items.size(), 4u);
  EXPECT_EQ(arr.items[0].number, 1);
  EXPECT_EQ(arr.items[1].number, -2500);
  EXPECT_EQ(arr.items[1].text, "-2.5e3");
  EXPECT_EQ(arr.items[2].kind, Kind::kBool);
  EXPECT_TRUE(arr.items[2].boolean);
  EXPECT_EQ(arr.items[3].kind, Kind::kNull);
  ASSERT_NE(v.find("a"), nullptr);
  EXPECT_TRUE(v.find("a")->find("s")->isString("x"));
  EXPECT_EQ(v.find("missing"), nullptr);
}

TEST(Json, RecordsLineAndColumnOfValues) {
  const JsonValue v = parseJson("{\n  \"a\":\n    7}");
  EXPECT_EQ(v.find("a")->line, 3);
  EXPECT_EQ(v.find("a")->column, 5);
}

TEST(Json, DecodesEscapes) {
  const JsonValue v = parseJson(R"(["a\"b\\c\/\n\t", "\u00e9", "\ud83d\ude00"])");
  EXPECT_EQ(v.items[0].text, "a\"b\\c/\n\t");
  EXPECT_EQ(v.items[1].text, "\xc3\xa9");
  EXPECT_EQ(v.items[2].text, "\xf0\x9f\x98\x80");
}

TEST(Json, MalformedInputNamesLineAndColumn) {
  EXPECT_EQ(parseError("{\n  \"a\": 1,\n}"), "line 3, column 1: expected a quoted key, got '}'");
  EXPECT_EQ(parseError(""),
            "line 1, column 1: expected a JSON value (object, array, string, "
            "number, true, false or null), got end of input");
  EXPECT_EQ(parseError("{\"a\": 1} x"),
            "line 1, column 10: expected end of input after the JSON "
            "value, got 'x'");
  EXPECT_EQ(parseError("{\"a\" 1}"), "line 1, column 6: expected ':' after the key, got '1'");
  EXPECT_EQ(parseError("[1 2]"), "line 1, column 4: expected ',' or ']' in the array, got '2'");
  EXPECT_EQ(parseError("{\"a\": \"x"),
            "line 1, column 9: expected a closing '\"', got end of input");
}

TEST(Json, RejectsWhatStrictJsonRejects) {
  for (const char* bad :
       {"{'a': 1}", "[01]", "[1.]", "[.5]", "[1e]", "[NaN]", "[Infinity]", "[-Infinity]", "[tru]",
        "// c\n{}", "[\"\\x\"]", "[\"\\u12\"]", "[\"a\nb\"]", "{\"a\":1,}", "[1,]"}) {
    EXPECT_NE(parseError(bad), "(parsed)") << bad;
  }
}

TEST(Json, RejectsDuplicateKeysLikeDeepSpeed) {
  EXPECT_EQ(parseError("{\"a\": 1,\n \"a\": 2}"),
            "line 2, column 2: duplicate key \"a\" (first at line 1); give each key once");
}

TEST(Json, BoundsNestingDepth) {
  const std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_NO_THROW(parseJson(ok));
  const std::string deep(100000, '[');
  EXPECT_NE(parseError(deep).find("levels of nesting"), std::string::npos);
}

}  // namespace
}  // namespace zshard::config
