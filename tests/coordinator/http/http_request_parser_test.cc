// The strict HTTP/1.1 request parser: framing (Content-Length, chunked, pipelining, bytes
// arriving one at a time), the body limit however the body arrives, and the requests a proxy
// could read differently (duplicate or contradictory Content-Length / Transfer-Encoding, ...).
#include "coordinator/http/http_request_parser.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;
using Progress = HttpRequestParser::Progress;

HttpLimits SmallLimits() {
  HttpLimits l;
  l.max_body_bytes = 100;
  l.max_header_bytes = 1024;
  l.max_header_fields = 10;
  l.max_target_bytes = 64;
  return l;
}

// Feeds `input` in one piece (or byte by byte) and keeps going past kHeaders.
Progress FeedAll(HttpRequestParser& p, const std::string& input, bool bytewise = false) {
  Progress r = Progress::kNeedMore;
  if (!bytewise) {
    r = p.Feed(input);
  } else {
    for (char c : input) {
      r = p.Feed(std::string(1, c));
      while (r == Progress::kHeaders) r = p.Feed("");
      if (r == Progress::kDone || r == Progress::kError) return r;
    }
  }
  while (r == Progress::kHeaders) r = p.Feed("");
  return r;
}

TEST(HttpRequestParserTest, ContentLengthBody) {
  for (bool bytewise : {false, true}) {
    HttpRequestParser p(SmallLimits());
    ASSERT_EQ(FeedAll(p,
                      "POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type:  "
                      "application/json \r\nContent-Length: 5\r\n\r\nhello",
                      bytewise),
              Progress::kDone);
    HttpRequest r = p.TakeRequest();
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/v1/completions?x=1");
    EXPECT_EQ(r.path, "/v1/completions");
    EXPECT_EQ(r.body, "hello");
    EXPECT_TRUE(r.keep_alive);
    ASSERT_NE(r.Header("content-type"), nullptr);
    EXPECT_EQ(*r.Header("content-type"), "application/json");
  }
}

TEST(HttpRequestParserTest, ChunkedBodyWithExtensionsAndTrailers) {
  for (bool bytewise : {false, true}) {
    HttpRequestParser p(SmallLimits());
    ASSERT_EQ(FeedAll(p,
                      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
                      "5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n",
                      bytewise),
              Progress::kDone);
    EXPECT_EQ(p.TakeRequest().body, "hello world!");
  }
}

TEST(HttpRequestParserTest, PipelinedRequestsAndKeepAlive) {
  HttpRequestParser p(SmallLimits());
  ASSERT_EQ(p.Feed("GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                   "GET /v1/models HTTP/1.0\r\n\r\nGET /x HTTP/1.0\r\nConnection: keep-alive\r\n"
                   "\r\n"),
            Progress::kDone);
  HttpRequest a = p.TakeRequest();
  EXPECT_EQ(a.path, "/health");
  EXPECT_FALSE(a.keep_alive);
  ASSERT_EQ(p.Feed(""), Progress::kDone);
  HttpRequest b = p.TakeRequest();
  EXPECT_EQ(b.path, "/v1/models");
  EXPECT_EQ(b.minor_version, 0);
  EXPECT_FALSE(b.keep_alive);  // HTTP/1.0 closes unless asked
  ASSERT_EQ(p.Feed(""), Progress::kDone);
  EXPECT_TRUE(p.TakeRequest().keep_alive);
  EXPECT_EQ(p.Feed(""), Progress::kNeedMore);
  EXPECT_FALSE(p.in_request());
}

TEST(HttpRequestParserTest, HeadersProgressAnnouncesTheBody) {
  HttpRequestParser p(SmallLimits());
  EXPECT_FALSE(p.in_request());
  EXPECT_EQ(p.Feed("POST / HTTP/1.1\r\nHost: a\r\n"), Progress::kNeedMore);
  EXPECT_TRUE(p.in_request());
  EXPECT_FALSE(p.in_body());
  EXPECT_EQ(p.Feed("Expect: 100-continue\r\nContent-Length: 3\r\n\r\n"), Progress::kHeaders);
  EXPECT_TRUE(p.expects_continue());
  EXPECT_TRUE(p.in_body());
  EXPECT_EQ(p.Feed("ab"), Progress::kNeedMore);
  EXPECT_EQ(p.Feed("c"), Progress::kDone);
}

// The body limit holds however the body arrives: a declared length over it is refused before
// any of it is read; a chunked body as soon as a chunk size passes it.
TEST(HttpRequestParserTest, BodyLimitHoldsForEveryFraming) {
  struct Case {
    std::string name;
    std::string input;
  };
  const std::string big_chunks = [] {
    std::string s = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 11; ++i) s += "a\r\n0123456789\r\n";  // 110 bytes in 10-byte chunks
    return s;
  }();
  for (const Case& c : std::vector<Case>{
           {"content_length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n"},
           {"huge_content_length",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n"},
           {"one_chunk", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n"},
           {"huge_chunk",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"},
           {"many_chunks", big_chunks},
       }) {
    SCOPED_TRACE(c.name);
    HttpRequestParser p(SmallLimits());
    ASSERT_EQ(FeedAll(p, c.input), Progress::kError);
    EXPECT_EQ(p.error().status, 413);
    EXPECT_THAT(p.error().message, HasSubstr("body: the request body exceeds 100 bytes"));
  }
}

TEST(HttpRequestParserTest, AmbiguousOrMalformedRequestsAreRefused) {
  struct Case {
    std::string name;
    std::string input;
    int status;
    std::string message;
  };
  const std::string post = "POST / HTTP/1.1\r\nHost: a\r\n";
  const std::vector<Case> cases = {
      {"duplicate_content_length", post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400,
       "duplicate Content-Length"},
      {"content_length_list", post + "Content-Length: 3, 3\r\n\r\nabc", 400, "Content-Length"},
      {"content_length_sign", post + "Content-Length: +3\r\n\r\nabc", 400, "Content-Length"},
      {"content_length_and_chunked",
       post + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
       "both Content-Length and Transfer-Encoding"},
      {"duplicate_transfer_encoding",
       post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
       "duplicate Transfer-Encoding"},
      {"gzip_chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n", 400, "chunked"},
      {"identity", post + "Transfer-Encoding: identity\r\n\r\n", 400, "chunked"},
      {"chunked_http10",
       "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0"},
      {"space_before_colon", post + "Content-Length : 3\r\n\r\nabc", 400, "whitespace before"},
      {"obs_fold", post + "X-A: 1\r\n  folded\r\n\r\n", 400, "folding"},
      {"bare_cr", "POST / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", 400, "bare CR"},
      {"control_char", post + "X-A: a\x01" "b\r\n\r\n", 400, "control character"},
      {"no_colon", post + "garbage\r\n\r\n", 400, "without ':'"},
      {"missing_host", "GET / HTTP/1.1\r\n\r\n", 400, "missing Host"},
      {"duplicate_host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate Host"},
      {"bad_chunk_size", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "chunk size"},
      {"chunk_without_crlf", post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX", 400, "CRLF"},
      {"request_line", "GET /\r\n\r\n", 400, "request line"},
      {"absolute_form", "GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "starting with '/'"},
      {"http2", "GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0"},
      {"version_garbage", "GET / HTCPCP/1.0\r\n\r\n", 400, "HTTP version"},
      {"long_target", "GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n", 414, "target"},
      {"long_header", post + "X: " + std::string(2000, 'a') + "\r\n\r\n", 431, "exceeds 1024"},
      {"many_headers",
       [&] {
         std::string s = post;
         for (int i = 0; i < 11; ++i) s += absl::StrCat("X-", i, ": 1\r\n");
         return s + "\r\n";
       }(),
       431, "more than 10 header fields"},
      {"expect_other", post + "Expect: 200-ok\r\n\r\n", 417, "100-continue"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    HttpRequestParser p(SmallLimits());
    ASSERT_EQ(FeedAll(p, c.input), Progress::kError);
    EXPECT_EQ(p.error().status, c.status);
    EXPECT_THAT(p.error().message, HasSubstr(c.message));
    // An error is final.
    EXPECT_EQ(p.Feed("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), Progress::kError);
  }
}

// A head that never ends is refused once it passes the limit, without buffering more.
TEST(HttpRequestParserTest, EndlessHeadIsRefusedAtTheLimit) {
  HttpRequestParser p(SmallLimits());
  ASSERT_EQ(p.Feed("GET / HTTP/1.1\r\nHost: a\r\nX: "), Progress::kNeedMore);
  Progress r = Progress::kNeedMore;
  for (int i = 0; i < 2000 && r == Progress::kNeedMore; ++i) r = p.Feed("a");
  EXPECT_EQ(r, Progress::kError);
  EXPECT_EQ(p.error().status, 431);
  EXPECT_LT(p.buffered(), 2048u);
}

TEST(HttpRequestParserTest, LeadingEmptyLinesAndBareLf) {
  HttpRequestParser p(SmallLimits());
  ASSERT_EQ(FeedAll(p, "\r\n\nGET /h HTTP/1.1\nHost: a\n\n"), Progress::kDone);
  EXPECT_EQ(p.TakeRequest().path, "/h");
}

}  // namespace
}  // namespace g4
