#include "worker/sampling/stop_string_matcher.h"

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace g4 {
namespace {

struct Outcome {
  std::string text;
  bool stopped = false;
  std::optional<size_t> stop_index;
  bool operator==(const Outcome&) const = default;
};

Outcome RunMatcher(const std::vector<std::string>& stops, const std::vector<std::string>& chunks) {
  StopStringMatcher m(stops);
  Outcome out;
  for (const std::string& c : chunks) {
    StopStringMatcher::Update u = m.Append(c);
    out.text += u.text;
    if (u.stopped) {
      out.stopped = true;
      out.stop_index = u.stop_index;
    }
  }
  out.text += m.Flush();
  return out;
}

// Brute force: the first end position at which some stop string ends (longest on ties).
Outcome Reference(const std::vector<std::string>& stops, const std::string& text) {
  for (size_t end = 1; end <= text.size(); ++end) {
    std::optional<size_t> best;
    for (size_t s = 0; s < stops.size(); ++s) {
      const std::string& stop = stops[s];
      if (stop.empty() || stop.size() > end) continue;
      if (text.compare(end - stop.size(), stop.size(), stop) != 0) continue;
      if (!best.has_value() || stop.size() > stops[*best].size()) best = s;
    }
    if (best.has_value()) return {text.substr(0, end - stops[*best].size()), true, best};
  }
  return {text, false, std::nullopt};
}

TEST(StopStringMatcherTest, NoStopStringsPassesEverythingThrough) {
  StopStringMatcher m({});
  EXPECT_EQ(m.Append("hello").text, "hello");
  EXPECT_EQ(m.held_back(), 0u);
}

TEST(StopStringMatcherTest, StopInsideOneChunk) {
  const Outcome o = RunMatcher({"END"}, {"abc", "deENDfg"});
  EXPECT_EQ(o, (Outcome{"abcde", true, 0}));
}

TEST(StopStringMatcherTest, HoldsBackOnlyAPrefixOfAStopString) {
  StopStringMatcher m({"</s>"});
  StopStringMatcher::Update u = m.Append("hello <");
  EXPECT_EQ(u.text, "hello ");
  EXPECT_EQ(m.held_back(), 1u);
  u = m.Append("/x");  // "</x" is not a prefix of "</s>"
  EXPECT_EQ(u.text, "</x");
  EXPECT_EQ(m.held_back(), 0u);
  u = m.Append("</");
  EXPECT_EQ(u.text, "");
  u = m.Append("s");
  EXPECT_EQ(u.text, "");
  EXPECT_FALSE(u.stopped);
  u = m.Append("> trailing");
  EXPECT_TRUE(u.stopped);
  EXPECT_EQ(u.text, "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Flush(), "");
  EXPECT_TRUE(m.Append("more").stopped);
  EXPECT_EQ(m.Append("more").text, "");
}

TEST(StopStringMatcherTest, StopStringSpanningThreeChunks) {
  const Outcome o = RunMatcher({"STOPHERE"}, {"text ST", "OPH", "ERE and more"});
  EXPECT_EQ(o, (Outcome{"text ", true, 0}));
}

TEST(StopStringMatcherTest, FlushReleasesHeldBackText) {
  const Outcome o = RunMatcher({"abc"}, {"xxa", "b"});
  EXPECT_EQ(o, (Outcome{"xxab", false, std::nullopt}));
}

TEST(StopStringMatcherTest, OverlappingStopStringsEarliestEndWins) {
  // "bc" is complete before "abcd" could be: stop at "bc".
  EXPECT_EQ(RunMatcher({"abcd", "bc"}, {"xabcd"}), (Outcome{"xa", true, 1}));
  EXPECT_EQ(RunMatcher({"abcd", "bc"}, {"xab", "cd"}), (Outcome{"xa", true, 1}));
  // Same end: the one starting first (the longer) wins.
  EXPECT_EQ(RunMatcher({"bc", "abc"}, {"xa", "bc"}), (Outcome{"x", true, 1}));
  // A stop string that is a prefix of another.
  EXPECT_EQ(RunMatcher({"ab", "abc"}, {"zab", "c"}), (Outcome{"z", true, 0}));
  // Self-overlapping stop string.
  EXPECT_EQ(RunMatcher({"aab"}, {"a", "a", "a", "b"}), (Outcome{"a", true, 0}));
}

TEST(StopStringMatcherTest, Utf8StopString) {
  EXPECT_EQ(RunMatcher({"→ done"}, {"step 1 \xE2", "\x86\x92 do", "ne!"}),
            (Outcome{"step 1 ", true, 0}));
}

TEST(StopStringMatcherTest, RandomChunkingsMatchWholeText) {
  std::mt19937 gen(12345);
  const std::string alphabet = "abc";
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::string> stops;
    const int num_stops = 1 + gen() % 3;
    for (int s = 0; s < num_stops; ++s) {
      std::string stop;
      const int len = 1 + gen() % 4;
      for (int i = 0; i < len; ++i) stop += alphabet[gen() % alphabet.size()];
      stops.push_back(stop);
    }
    std::string text;
    const int len = gen() % 30;
    for (int i = 0; i < len; ++i) text += alphabet[gen() % alphabet.size()];
    const Outcome whole = RunMatcher(stops, {text});
    ASSERT_EQ(whole, Reference(stops, text)) << text;
    for (int split = 0; split < 5; ++split) {
      std::vector<std::string> chunks;
      size_t pos = 0;
      while (pos < text.size()) {
        const size_t n = std::min<size_t>(gen() % 5, text.size() - pos);  // empty chunks too
        chunks.push_back(text.substr(pos, n));
        pos += n;
      }
      ASSERT_EQ(RunMatcher(stops, chunks), whole) << text;
    }
  }
}

TEST(StopStringMatcherTest, EmittedTextIsAlwaysAPrefixOfTheFinalText) {
  StopStringMatcher m({"<end_of_turn>", "\n\n"});
  std::string emitted;
  for (const char* c : {"Hi", " there", "\n", "<end", "_of", "_turn>", "x"}) {
    emitted += m.Append(c).text;
    EXPECT_EQ(std::string("Hi there\n").substr(0, emitted.size()), emitted);
  }
  EXPECT_EQ(emitted, "Hi there\n");
  EXPECT_TRUE(m.stopped());
}

}  // namespace
}  // namespace g4
