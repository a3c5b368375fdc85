#include "common/safetensors.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/safetensors_writer.h"

namespace g4 {
namespace {

using ::g4::testing_util::Iota;
using ::g4::testing_util::SafetensorsWriter;
using ::g4::testing_util::ScopedTempDir;
using ::g4::testing_util::WriteOptions;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(tmp_.ok()); }

  std::unique_ptr<SafetensorsFile> OpenOk(const SafetensorsWriter& w,
                                          const WriteOptions& opt = {}) {
    const std::string path = tmp_.File("ok.safetensors");
    EXPECT_TRUE(w.Write(path, opt));
    auto f = SafetensorsFile::Open(path);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? std::move(f).value() : nullptr;
  }

  // Writes `contents` to bad.safetensors and returns what Open says.
  absl::Status OpenContents(const std::string& contents) {
    EXPECT_TRUE(SafetensorsWriter::WriteFile(BadPath(), contents));
    auto f = SafetensorsFile::Open(BadPath());
    return f.status();
  }
  // A file from a hand-written header and buffer.
  absl::Status OpenHeader(const std::string& header, const std::string& buffer) {
    return OpenContents(SafetensorsWriter::Assemble(header, buffer));
  }
  std::string BadPath() const { return tmp_.File("bad.safetensors"); }

  ScopedTempDir tmp_;
};

// ---------------------------------------------------------------- valid files

TEST_F(SafetensorsTest, ReadsF32AndMetadata) {
  SafetensorsWriter w;
  w.SetMetadata("format", "pt");
  w.AddF32("b.weight", {2, 3}, {1, 2, 3, 4, 5, 6});
  w.AddF32("a.bias", {2}, {-1.5f, 0.25f});
  auto f = OpenOk(w);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  ASSERT_EQ(f->tensors().size(), 2u);
  // Header order is kept.
  EXPECT_EQ(f->tensors()[0].name, "b.weight");
  EXPECT_EQ(f->tensors()[1].name, "a.bias");

  const TensorInfo* b = f->Find("b.weight");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kF32);
  EXPECT_THAT(b->shape, ElementsAre(2, 3));
  EXPECT_EQ(b->NumElements(), 6);
  EXPECT_EQ(b->begin, 0u);
  EXPECT_EQ(b->end, 24u);
  EXPECT_EQ(f->Find("missing"), nullptr);

  std::vector<float> out(6);
  ASSERT_TRUE(f->ReadSlice(*b, TensorSlice::All(), absl::MakeSpan(out)).ok());
  EXPECT_THAT(out, ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_EQ(f->bytes_read(), 24u);

  std::vector<float> bias(2);
  ASSERT_TRUE(f->ReadSlice(*f->Find("a.bias"), TensorSlice::All(), absl::MakeSpan(bias)).ok());
  EXPECT_THAT(bias, ElementsAre(-1.5f, 0.25f));
  EXPECT_EQ(f->bytes_read(), 32u);
}

TEST_F(SafetensorsTest, ConvertsBf16) {
  const std::vector<float> vals = {1.f, -2.f, 0.5f, 3.140625f, 0.1f, -1e30f};
  SafetensorsWriter w;
  w.AddBf16("x", {2, 3}, vals);
  auto f = OpenOk(w);
  ASSERT_NE(f, nullptr);
  const TensorInfo* x = f->Find("x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->dtype, DType::kBf16);
  std::vector<float> out(6);
  ASSERT_TRUE(f->ReadSlice(*x, TensorSlice::All(), absl::MakeSpan(out)).ok());
  for (size_t i = 0; i < vals.size(); ++i) EXPECT_EQ(out[i], RoundToBf16(vals[i])) << i;
  EXPECT_EQ(out[0], 1.f);
  EXPECT_EQ(out[3], 3.140625f);
  EXPECT_EQ(f->bytes_read(), 12u);
}

TEST_F(SafetensorsTest, ConvertsF16) {
  // 1, -2, 0.5, 65504 (max), 2^-24 (smallest subnormal), -0, +inf
  SafetensorsWriter w;
  w.AddF16Bits("h", {7}, {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000, 0x7C00});
  auto f = OpenOk(w);
  ASSERT_NE(f, nullptr);
  std::vector<float> out(7);
  ASSERT_TRUE(f->ReadSlice(*f->Find("h"), TensorSlice::All(), absl::MakeSpan(out)).ok());
  EXPECT_EQ(out[0], 1.f);
  EXPECT_EQ(out[1], -2.f);
  EXPECT_EQ(out[2], 0.5f);
  EXPECT_EQ(out[3], 65504.f);
  EXPECT_EQ(out[4], std::ldexp(1.f, -24));
  EXPECT_EQ(out[5], 0.f);
  EXPECT_TRUE(std::signbit(out[5]));
  EXPECT_EQ(out[6], std::numeric_limits<float>::infinity());
}

TEST_F(SafetensorsTest, RawBytesIsZeroCopy) {
  SafetensorsWriter w;
  w.AddF32("a", {2}, {1, 2});
  w.AddBf16("b", {3}, {1, 2, 3});
  auto f = OpenOk(w);
  ASSERT_NE(f, nullptr);
  const TensorInfo* b = f->Find("b");
  absl::Span<const uint8_t> raw = f->RawBytes(*b);
  ASSERT_EQ(raw.size(), 6u);
  const uint16_t expect[3] = {F32ToBf16(1), F32ToBf16(2), F32ToBf16(3)};
  EXPECT_EQ(std::memcmp(raw.data(), expect, 6), 0);
  // Same pointer every time (a view into the mapping) and no bytes counted as read.
  EXPECT_EQ(f->RawBytes(*b).data(), raw.data());
  EXPECT_EQ(f->RawBytes(*f->Find("a")).data() + 8, raw.data());
  EXPECT_EQ(f->bytes_read(), 0u);
}

TEST_F(SafetensorsTest, UnpaddedHeadersOfEveryLengthRead) {
  // An odd header length leaves the byte buffer misaligned; reads must still be exact.
  for (int pad = 0; pad < 8; ++pad) {
    SafetensorsWriter w;
    w.SetMetadata("k", std::string(pad, 'x'));
    w.AddBf16("b", {2, 2}, {1, -1, 2, -2});
    w.AddF16Bits("h", {2}, {0x3C00, 0xC000});
    WriteOptions unpadded;
    unpadded.pad_header = false;
    auto f = OpenOk(w, unpadded);
    ASSERT_NE(f, nullptr);
    std::vector<float> b(2), h(2);
    ASSERT_TRUE(f->ReadSlice(*f->Find("b"), TensorSlice::Cols(0, 1), absl::MakeSpan(b)).ok());
    EXPECT_THAT(b, ElementsAre(1, 2)) << pad;
    ASSERT_TRUE(f->ReadSlice(*f->Find("h"), TensorSlice::All(), absl::MakeSpan(h)).ok());
    EXPECT_THAT(h, ElementsAre(1, -2)) << pad;
  }
}

TEST_F(SafetensorsTest, EmptyAndScalarTensorsAreAllowed) {
  SafetensorsWriter w;
  w.AddF32("empty", {0, 3}, {});
  w.AddF32("scalar", {}, {7.5f});
  w.AddF32("empty2", {4, 0}, {});
  auto f = OpenOk(w);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Find("empty")->NumElements(), 0);
  std::vector<float> s(1);
  ASSERT_TRUE(f->ReadSlice(*f->Find("scalar"), TensorSlice::All(), absl::MakeSpan(s)).ok());
  EXPECT_EQ(s[0], 7.5f);
  std::vector<float> none;
  EXPECT_TRUE(f->ReadSlice(*f->Find("empty"), TensorSlice::All(), absl::MakeSpan(none)).ok());
}

TEST_F(SafetensorsTest, EmptyFileOfTensors) {
  // "{}" plus nothing: valid, no tensors.
  ASSERT_TRUE(SafetensorsWriter::WriteFile(BadPath(), SafetensorsWriter::Assemble("{}", "")));
  auto f = SafetensorsFile::Open(BadPath());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE((*f)->tensors().empty());
}

// ---------------------------------------------------------------- slices

class SliceTest : public SafetensorsTest {
 protected:
  void SetUp() override {
    SafetensorsTest::SetUp();
    SafetensorsWriter w;
    w.AddF32("m", {4, 5}, Iota(20));      // m[r][c] = 5r + c
    w.AddBf16("e", {3, 2, 4}, Iota(24));  // e[x][r][c] = 8x + 4r + c
    w.AddF32("v", {6}, Iota(6, 10));      // 10..15
    w.AddF32("r4", {1, 1, 1, 2}, {1, 2});
    f_ = OpenOk(w);
    ASSERT_NE(f_, nullptr);
  }
  const TensorInfo& T(const char* name) { return *f_->Find(name); }

  std::unique_ptr<SafetensorsFile> f_;
};

TEST_F(SliceTest, RowBlock) {
  auto shape = SliceShape(T("m"), TensorSlice::Rows(1, 3));
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(*shape, std::make_pair(int64_t{2}, int64_t{5}));
  std::vector<float> out(10);
  ASSERT_TRUE(f_->ReadSlice(T("m"), TensorSlice::Rows(1, 3), absl::MakeSpan(out)).ok());
  EXPECT_THAT(out, ElementsAreArray(Iota(10, 5)));
  EXPECT_EQ(f_->bytes_read(), 10u * 4);
}

TEST_F(SliceTest, ColumnBlock) {
  std::vector<float> out(8);
  ASSERT_TRUE(f_->ReadSlice(T("m"), TensorSlice::Cols(2, 4), absl::MakeSpan(out)).ok());
  EXPECT_THAT(out, ElementsAre(2, 3, 7, 8, 12, 13, 17, 18));
  EXPECT_EQ(f_->bytes_read(), 8u * 4);
}

TEST_F(SliceTest, RowAndColumnBlock) {
  const TensorSlice s{-1, 1, 3, 1, 4};
  auto shape = SliceShape(T("m"), s);
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(*shape, std::make_pair(int64_t{2}, int64_t{3}));
  std::vector<float> out(6);
  ASSERT_TRUE(f_->ReadSlice(T("m"), s, absl::MakeSpan(out)).ok());
  EXPECT_THAT(out, ElementsAre(6, 7, 8, 11, 12, 13));
  EXPECT_EQ(f_->bytes_read(), 6u * 4);
}

TEST_F(SliceTest, OneExpert) {
  std::vector<float> out(8);
  ASSERT_TRUE(f_->ReadSlice(T("e"), TensorSlice::Expert(1), absl::MakeSpan(out)).ok());
  EXPECT_THAT(out, ElementsAreArray(Iota(8, 8)));
  EXPECT_EQ(f_->bytes_read(), 8u * 2);  // bf16

  // Part of an expert: expert 2, row 1, columns 1..3.
  std::vector<float> part(2);
  ASSERT_TRUE(f_->ReadSlice(T("e"), TensorSlice{2, 1, 2, 1, 3}, absl::MakeSpan(part)).ok());
  EXPECT_THAT(part, ElementsAre(21, 22));
  EXPECT_EQ(f_->bytes_read(), 8u * 2 + 2u * 2);
}

TEST_F(SliceTest, OneDimensional) {
  auto shape = SliceShape(T("v"), TensorSlice::Cols(2, 5));
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(*shape, std::make_pair(int64_t{1}, int64_t{3}));
  std::vector<float> out(3);
  ASSERT_TRUE(f_->ReadSlice(T("v"), TensorSlice::Cols(2, 5), absl::MakeSpan(out)).ok());
  EXPECT_THAT(out, ElementsAre(12, 13, 14));
  EXPECT_EQ(f_->bytes_read(), 12u);
  std::vector<float> all(6);
  ASSERT_TRUE(f_->ReadSlice(T("v"), TensorSlice::All(), absl::MakeSpan(all)).ok());
  EXPECT_THAT(all, ElementsAreArray(Iota(6, 10)));
}

TEST_F(SliceTest, OutOfRangeSlicesAreErrors) {
  std::vector<float> big(100);
  struct Case {
    const char* tensor;
    TensorSlice slice;
    const char* message;
  };
  const Case cases[] = {
      {"m", TensorSlice::Rows(0, 5), "rows [0, 5) out of range [0, 4]"},
      {"m", TensorSlice::Rows(3, 2), "rows [3, 2)"},
      {"m", TensorSlice::Rows(-2, 2), "rows [-2, 2)"},
      {"m", TensorSlice::Cols(4, 6), "cols [4, 6) out of range [0, 5]"},
      {"m", TensorSlice::Expert(0), "index0 must be -1"},
      {"e", TensorSlice::Expert(3), "index0 3 out of range [0, 3)"},
      {"e", TensorSlice::All(), "index0 -1 out of range"},
      {"e", TensorSlice{0, 0, 3, 0, -1}, "rows [0, 3)"},
      {"v", TensorSlice::Cols(0, 7), "cols [0, 7)"},
      {"v", TensorSlice::Rows(0, 2), "rows [0, 2)"},
      {"r4", TensorSlice::All(), "rank > 3"},
  };
  for (const Case& c : cases) {
    auto shape = SliceShape(T(c.tensor), c.slice);
    ASSERT_FALSE(shape.ok()) << c.message;
    EXPECT_EQ(shape.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(shape.status().message(), HasSubstr(c.message));
    EXPECT_THAT(shape.status().message(), HasSubstr(absl::StrCat("\"", c.tensor, "\"")));
    absl::Status s = f_->ReadSlice(T(c.tensor), c.slice, absl::MakeSpan(big));
    EXPECT_FALSE(s.ok());
  }
  EXPECT_EQ(f_->bytes_read(), 0u);
}

TEST_F(SliceTest, OutputSizeMustMatch) {
  std::vector<float> out(9);
  absl::Status s = f_->ReadSlice(T("m"), TensorSlice::Rows(1, 3), absl::MakeSpan(out));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("2 x 5"));
  EXPECT_EQ(f_->bytes_read(), 0u);
}

// ---------------------------------------------------------------- invalid files

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  auto f = SafetensorsFile::Open(tmp_.File("nope.safetensors"));
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(f.status().message(), HasSubstr("nope.safetensors"));
}

TEST_F(SafetensorsTest, FileShorterThanEightBytes) {
  absl::Status s = OpenContents(std::string("\x02\0\0\0\0", 5));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(BadPath()));
  EXPECT_THAT(s.message(), HasSubstr("5 bytes"));
  EXPECT_FALSE(OpenContents("").ok());
}

TEST_F(SafetensorsTest, HeaderLengthBeyondFile) {
  SafetensorsWriter w;
  w.AddF32("a", {2}, {1, 2});
  const std::string header = w.Header();
  absl::Status s = OpenContents(SafetensorsWriter::Assemble(header, w.Buffer(), header.size() + 9));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(BadPath()));
  EXPECT_THAT(s.message(), HasSubstr("runs past the end of the file"));
  // Huge values must not overflow 8 + N.
  s = OpenContents(SafetensorsWriter::Assemble(header, "", ~uint64_t{0}));
  EXPECT_FALSE(s.ok());
}

TEST_F(SafetensorsTest, HeaderOverLimit) {
  absl::Status s = OpenContents(SafetensorsWriter::Assemble("{}", "", 100'000'001));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("header length 100000001 exceeds the limit of 100000000"));
  EXPECT_THAT(s.message(), HasSubstr(BadPath()));
}

TEST_F(SafetensorsTest, InvalidJson) {
  absl::Status s = OpenHeader("{\"a\": {\"dtype\": ", "");
  EXPECT_THAT(s.message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(s.message(), HasSubstr(BadPath()));
  EXPECT_THAT(OpenHeader(std::string("{\0}", 3), "").message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(OpenHeader("", "").message(), HasSubstr("not valid JSON"));
}

TEST_F(SafetensorsTest, HeaderNotAnObject) {
  EXPECT_THAT(OpenHeader("[1, 2]", "").message(), HasSubstr("not a JSON object"));
  EXPECT_THAT(OpenHeader("\"x\"      ", "").message(), HasSubstr("not a JSON object"));
}

TEST_F(SafetensorsTest, EntryNotAnObjectOrMissingKeys) {
  EXPECT_THAT(OpenHeader(R"({"a": 3})", "").message(), HasSubstr("entry must be an object"));
  EXPECT_THAT(OpenHeader(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", "    ").message(),
              HasSubstr("missing `dtype`"));
  EXPECT_THAT(OpenHeader(R"({"a": {"dtype": "F32", "data_offsets": [0, 4]}})", "    ").message(),
              HasSubstr("missing `shape`"));
  EXPECT_THAT(OpenHeader(R"({"a": {"dtype": "F32", "shape": [1]}})", "    ").message(),
              HasSubstr("missing `data_offsets`"));
  EXPECT_THAT(
      OpenHeader(R"({"a": {"dtype": 7, "shape": [1], "data_offsets": [0, 4]}})", "    ").message(),
      HasSubstr("`dtype` must be a string"));
  EXPECT_THAT(OpenHeader(R"({"a": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", "    ")
                  .message(),
              HasSubstr("`shape` must be a list"));
  EXPECT_THAT(
      OpenHeader(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 4]}})", "    ")
          .message(),
      HasSubstr("`data_offsets` must be [begin, end]"));
  EXPECT_THAT(
      OpenHeader(R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", "    ")
          .message(),
      HasSubstr("non-negative integers"));
}

TEST_F(SafetensorsTest, UnknownDtype) {
  absl::Status s =
      OpenHeader(R"({"w": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 2]}})", "xx");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("unknown dtype \"Q7\""));
  EXPECT_THAT(s.message(), HasSubstr("tensor \"w\""));
  EXPECT_THAT(s.message(), HasSubstr(BadPath()));
}

TEST_F(SafetensorsTest, KnownButUnsupportedDtype) {
  for (const char* dt : {"I64", "U8", "F8_E4M3", "F64", "BOOL"}) {
    absl::Status s = OpenHeader(
        absl::StrCat(R"({"ids": {"dtype": ")", dt, R"(", "shape": [0], "data_offsets": [0, 0]}})"),
        "");
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("unsupported dtype ", dt))) << dt;
    EXPECT_THAT(s.message(), HasSubstr("tensor \"ids\""));
  }
}

TEST_F(SafetensorsTest, ShapeOffsetsMismatch) {
  absl::Status s = OpenHeader(
      R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", std::string(12, 0));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tensor \"w\""));
  EXPECT_THAT(s.message(), HasSubstr("shape [2, 2] x F32 needs 16 bytes"));
  EXPECT_THAT(s.message(), HasSubstr("span 12"));
}

TEST_F(SafetensorsTest, ShapeOverflow) {
  absl::Status s = OpenHeader(
      R"({"w": {"dtype": "BF16", "shape": [4611686018427387904, 8], "data_offsets": [0, 0]}})", "");
  EXPECT_THAT(s.message(), HasSubstr("overflows"));
  EXPECT_THAT(s.message(), HasSubstr("tensor \"w\""));
  // Overflow of elements x dtype size alone.
  s = OpenHeader(
      R"({"w": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", "");
  EXPECT_THAT(s.message(), HasSubstr("overflows"));
}

TEST_F(SafetensorsTest, NegativeShape) {
  absl::Status s = OpenHeader(
      R"({"w": {"dtype": "F32", "shape": [-1, 2], "data_offsets": [0, 8]}})", std::string(8, 0));
  EXPECT_THAT(s.message(), HasSubstr("non-negative"));
  EXPECT_THAT(s.message(), HasSubstr("tensor \"w\""));
}

TEST_F(SafetensorsTest, NegativeOrReversedOffsets) {
  EXPECT_THAT(
      OpenHeader(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", "").message(),
      HasSubstr("`data_offsets`"));
  EXPECT_THAT(OpenHeader(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})",
                         std::string(8, 0))
                  .message(),
              HasSubstr("begin > end"));
}

TEST_F(SafetensorsTest, OffsetsOutsideBuffer) {
  absl::Status s = OpenHeader(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
                              std::string(4, 0));
  EXPECT_THAT(s.message(), HasSubstr("tensor \"w\""));
  EXPECT_THAT(s.message(), HasSubstr("data_offsets [0, 8] lie outside the byte buffer of 4 bytes"));
  EXPECT_THAT(s.message(), HasSubstr(BadPath()));
}

TEST_F(SafetensorsTest, Overlap) {
  absl::Status s = OpenHeader(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                              std::string(12, 0));
  EXPECT_THAT(s.message(), HasSubstr("tensor \"b\": overlaps \"a\""));
  EXPECT_THAT(s.message(), HasSubstr("starts at 4, expected 8"));
}

TEST_F(SafetensorsTest, Gap) {
  absl::Status s = OpenHeader(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
                              std::string(20, 0));
  EXPECT_THAT(s.message(), HasSubstr("tensor \"b\": gap"));
  EXPECT_THAT(s.message(), HasSubstr("starts at 12, expected 8"));
  // A gap at the start of the buffer.
  s = OpenHeader(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                 std::string(8, 0));
  EXPECT_THAT(s.message(), HasSubstr("start of the buffer"));
}

TEST_F(SafetensorsTest, TrailingBytes) {
  SafetensorsWriter w;
  w.AddF32("a", {2}, {1, 2});
  WriteOptions junk;
  junk.trailing_bytes = "junk";
  EXPECT_TRUE(w.Write(BadPath(), junk));
  absl::Status s = SafetensorsFile::Open(BadPath()).status();
  EXPECT_THAT(s.message(), HasSubstr("byte buffer is 12 bytes but the tensors end at 8"));
  EXPECT_THAT(s.message(), HasSubstr("4 trailing bytes"));
  EXPECT_THAT(s.message(), HasSubstr(BadPath()));
}

TEST_F(SafetensorsTest, TruncatedFile) {
  SafetensorsWriter w;
  w.AddF32("a", {2}, {1, 2});
  w.AddF32("b", {4}, {1, 2, 3, 4});
  const std::string full = w.Build();
  absl::Status s = OpenContents(full.substr(0, full.size() - 4));
  EXPECT_THAT(s.message(), HasSubstr("tensor \"b\""));
  EXPECT_THAT(s.message(), HasSubstr("outside the byte buffer"));
  // Cut inside the header.
  s = OpenContents(full.substr(0, 20));
  EXPECT_THAT(s.message(), HasSubstr("runs past the end of the file"));
}

TEST_F(SafetensorsTest, DuplicateName) {
  absl::Status s = OpenHeader(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                  "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                              std::string(8, 0));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tensor \"a\": duplicate name"));
  // A duplicate key inside an entry is also rejected.
  s = OpenHeader(R"({"a": {"dtype": "F32", "dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                 std::string(4, 0));
  EXPECT_THAT(s.message(), HasSubstr("duplicate key \"dtype\""));
}

TEST_F(SafetensorsTest, BadMetadata) {
  EXPECT_THAT(OpenHeader(R"({"__metadata__": {"format": 1}})", "").message(),
              HasSubstr("`__metadata__` value for \"format\" must be a string"));
  EXPECT_THAT(OpenHeader(R"({"__metadata__": [1]})", "").message(),
              HasSubstr("`__metadata__` must be an object"));
}

}  // namespace
}  // namespace g4
