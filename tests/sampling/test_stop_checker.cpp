#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vllm/sampling/stop_checker.h"

using vllm::StopChecker;

namespace {

// Feeds the deltas, collecting what DELTA streaming would send; returns the streamed text.
std::string stream(StopChecker& c, const std::vector<std::string>& deltas, bool finish_at_end = true) {
  std::string sent;
  for (const auto& d : deltas) {
    c.append(d);
    sent += c.next_delta(false);
    if (c.stopped()) break;
  }
  if (finish_at_end) sent += c.next_delta(true);
  return sent;
}

}  // namespace

TEST(StopStrings, CheckFindsStopsEndingInTheNewText) {
  std::vector<std::string> stop = {"STOP"};
  auto m = vllm::check_stop_strings("abcST", 2, stop, false);
  EXPECT_FALSE(m);
  m = vllm::check_stop_strings("abcSTOPxy", 4, stop, false);  // new text "OPxy"
  ASSERT_TRUE(m);
  EXPECT_EQ(m->stop_str, "STOP");
  EXPECT_EQ(m->truncate_to, 3u);
  m = vllm::check_stop_strings("abcSTOPxy", 4, stop, true);
  EXPECT_EQ(m->truncate_to, 7u);
  m = vllm::check_stop_strings("abcSTOP", 1, stop, true);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->truncate_to);  // ends the text: nothing to cut
  // Already-checked text is not searched again.
  EXPECT_FALSE(vllm::check_stop_strings("STOPabc", 3, stop, false));
  EXPECT_FALSE(vllm::check_stop_strings("abc", 0, stop, false));
}

TEST(StopStrings, EarliestCompletingStopWins) {
  std::vector<std::string> stop = {"abc", "b", "xbc"};
  auto m = vllm::check_stop_strings("..abc", 3, stop, false);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->stop_str, "b");  // one token at a time, "b" would have stopped first
  EXPECT_EQ(m->truncate_to, 3u);
  std::vector<std::string> same_end = {"bc", "abc"};
  m = vllm::check_stop_strings("..abc", 3, same_end, false);
  EXPECT_EQ(m->stop_str, "bc");  // equal ends: list order
}

TEST(StopChecker, StopAcrossDeltas) {
  StopChecker c({"</end>"}, false);
  EXPECT_FALSE(c.append("Hello </"));
  EXPECT_FALSE(c.append("en"));
  EXPECT_TRUE(c.append("d> trailing"));
  EXPECT_TRUE(c.stopped());
  EXPECT_EQ(*c.stop_reason(), "</end>");
  EXPECT_EQ(c.text(), "Hello ");
  EXPECT_FALSE(c.append("more"));  // ignored after the stop
  EXPECT_EQ(c.text(), "Hello ");
}

TEST(StopChecker, HoldsBackOnlyWhatCouldBecomeAStop) {
  StopChecker c({"STOP", "xyz"}, false);
  c.append("abcS");
  EXPECT_EQ(c.visible_text(false), "abc");
  c.append("T");
  EXPECT_EQ(c.visible_text(false), "abc");
  c.append("a");  // "STa" can no longer become a stop
  EXPECT_EQ(c.visible_text(false), "abcSTa");
  c.append("x");
  EXPECT_EQ(c.visible_text(false), "abcSTa");
  EXPECT_EQ(c.visible_text(true), "abcSTax");  // finished: everything
}

TEST(StopChecker, StreamedDeltasNeverShowPartOfAStop) {
  const std::vector<std::string> pieces = {"The ", "ans", "wer is ", "4", "2", ".", "\n\n", "Q", "uestion", ": next"};
  for (bool include : {false, true}) {
    StopChecker c({"\n\nQuestion:"}, include);
    std::string sent = stream(c, pieces);
    ASSERT_TRUE(c.stopped());
    if (include) {
      EXPECT_EQ(c.text(), "The answer is 42.\n\nQuestion:");
    } else {
      EXPECT_EQ(c.text(), "The answer is 42.");
    }
    EXPECT_EQ(sent, c.text());  // every streamed byte is part of the final text
  }
}

TEST(StopChecker, IncludeStopStringBothWays) {
  StopChecker excl({"##"}, false);
  excl.append("a#");
  EXPECT_EQ(excl.visible_text(false), "a");
  excl.append("#b");
  EXPECT_EQ(excl.text(), "a");
  StopChecker incl({"##"}, true);
  incl.append("a#");
  EXPECT_EQ(incl.visible_text(false), "a#");  // kept in the output anyway: no hold-back
  incl.append("#b");
  EXPECT_EQ(incl.text(), "a##");
  EXPECT_EQ(*incl.stop_reason(), "##");
}

TEST(StopChecker, MultibyteCharacters) {
  // "€" is E2 82 AC; the stop "€€" shares its first bytes with the text's "€".
  StopChecker c({"\xE2\x82\xAC\xE2\x82\xAC"}, false);
  c.append("caf\xC3\xA9 \xE2\x82\xAC");
  EXPECT_EQ(c.visible_text(false), "caf\xC3\xA9 ");  // the "€" may start "€€"
  c.append("\xE2\x82");  // half a character
  EXPECT_EQ(c.visible_text(false), "caf\xC3\xA9 ");
  c.append("\xAC!");
  EXPECT_TRUE(c.stopped());
  EXPECT_EQ(c.text(), "caf\xC3\xA9 ");

  // A torn character at the end is never streamed, even without any stop string.
  StopChecker plain({}, false);
  plain.append("\xE4\xBD");
  EXPECT_EQ(plain.visible_text(false), "");
  plain.append("\xA0\xE5");
  EXPECT_EQ(plain.next_delta(false), "\xE4\xBD\xA0");
  plain.append("\xA5\xBD");
  EXPECT_EQ(plain.next_delta(false), "\xE5\xA5\xBD");

  // A stop string ending in a multibyte character cut mid-way holds the whole character.
  StopChecker d({"a\xC3\xA9"}, false);  // "aé"
  d.append("xa\xC3");
  EXPECT_EQ(d.visible_text(false), "x");
  std::string sent = d.next_delta(false);
  d.append("\xA9yz");
  EXPECT_TRUE(d.stopped());
  EXPECT_EQ(d.text(), "x");
  EXPECT_EQ(sent, "x");
}

TEST(StopChecker, NoCheckBeforeMinTokens) {
  StopChecker c({"ab"}, false);
  EXPECT_FALSE(c.append("ab", /*check_stop=*/false));  // vLLM skips the check below min_tokens
  EXPECT_FALSE(c.stopped());
  EXPECT_TRUE(c.append("cab"));
  EXPECT_EQ(c.text(), "abc");
}

TEST(StopChecker, CumulativeAndDeltaAgree) {
  StopChecker c({"<|im_end|>"}, false);
  std::string sent;
  for (std::string d : {"Hi", " there", "<|", "im", "_", "end", "|>", "ignored"}) {
    c.append(d);
    sent += c.next_delta(false);
    EXPECT_EQ(std::string(c.visible_text(false)).substr(0, sent.size()), sent);
    if (c.stopped()) break;
  }
  EXPECT_EQ(sent, "Hi there");
  EXPECT_EQ(c.next_delta(true), "");
}

TEST(StopChecker, HoldbackHelper) {
  std::vector<std::string> stop = {"abcd", "cx"};
  EXPECT_EQ(vllm::stop_holdback("zzabc", stop), 3u);
  EXPECT_EQ(vllm::stop_holdback("zzc", stop), 1u);
  EXPECT_EQ(vllm::stop_holdback("zzz", stop), 0u);
  EXPECT_EQ(vllm::stop_holdback("", stop), 0u);
  EXPECT_EQ(vllm::stop_holdback("abcd", stop), 0u);  // a whole stop is a match, not a hold-back
}
