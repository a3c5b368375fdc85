#include "common/tokenizer/tokenizer_json.h"

#include <lzma.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace g4::tokenizer_internal {
namespace {

using json = nlohmann::json;

class Sax {
 public:
  explicit Sax(TokenizerJson* out) : out_(out) {}

  bool null() { return Value(json(nullptr)); }
  bool boolean(bool v) { return Value(json(v)); }
  bool number_integer(json::number_integer_t v) { return Number(v); }
  bool number_unsigned(json::number_unsigned_t v) {
    if (v > static_cast<json::number_unsigned_t>(INT64_MAX)) return Fail("integer too large");
    return Number(static_cast<int64_t>(v));
  }
  bool number_float(json::number_float_t v, const json::string_t&) {
    if (mode_ != kDom) return Fail(ModeError());
    return Value(json(v));
  }
  bool string(json::string_t& s) {
    switch (mode_) {
      case kDom:
        return Value(json(std::move(s)));
      case kVocab:
        return Fail("model.vocab values must be integers");
      case kMerges: {
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          return Fail(absl::StrCat("model.merges[", out_->merges.size(),
                                   "]: expected \"left right\", got \"", s, "\""));
        }
        out_->merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
        return true;
      }
      case kMergePair:
        if (pair_.size() >= 2) return Fail("model.merges: a merge pair has more than 2 strings");
        pair_.push_back(std::move(s));
        return true;
    }
    return true;
  }
  bool binary(json::binary_t&) { return Fail("unexpected binary value"); }
  bool start_object(std::size_t) {
    if (mode_ != kDom) return Fail(ModeError());
    if (AtModelField("vocab")) {
      mode_ = kVocab;
      saw_vocab_ = true;
      return true;
    }
    return Open(json::object());
  }
  bool key(json::string_t& k) {
    if (mode_ == kVocab) {
      vocab_key_ = std::move(k);
    } else {
      last_key_ = std::move(k);
    }
    return true;
  }
  bool end_object() {
    if (mode_ == kVocab) {
      mode_ = kDom;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    if (mode_ == kMerges) {
      mode_ = kMergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != kDom) return Fail(ModeError());
    if (AtModelField("merges")) {
      mode_ = kMerges;
      return true;
    }
    return Open(json::array());
  }
  bool end_array() {
    if (mode_ == kMergePair) {
      if (pair_.size() != 2) return Fail("model.merges: a merge pair needs exactly 2 strings");
      out_->merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = kMerges;
      return true;
    }
    if (mode_ == kMerges) {
      mode_ = kDom;
      return true;
    }
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) {
    error_ = absl::StrCat("invalid JSON at byte ", position, ": ", e.what());
    return false;
  }

  bool saw_vocab() const { return saw_vocab_; }
  const std::string& error() const { return error_; }

 private:
  enum Mode { kDom, kVocab, kMerges, kMergePair };

  std::string ModeError() const {
    return mode_ == kVocab ? "model.vocab values must be integers"
                           : "model.merges must hold \"a b\" strings or [\"a\", \"b\"] pairs";
  }
  bool Fail(std::string msg) {
    if (error_.empty()) error_ = std::move(msg);
    return false;
  }
  // True when the container about to open is root.model.<field>.
  bool AtModelField(const char* field) const {
    return stack_.size() == 2 && keys_[1] == "model" && stack_.back()->is_object() &&
           last_key_ == field;
  }
  json* Place(json&& v) {
    if (stack_.empty()) {
      out_->root = std::move(v);
      return &out_->root;
    }
    json* parent = stack_.back();
    if (parent->is_array()) {
      parent->push_back(std::move(v));
      return &parent->back();
    }
    json& slot = (*parent)[last_key_];
    slot = std::move(v);
    return &slot;
  }
  bool Value(json&& v) {
    if (mode_ != kDom) return Fail(ModeError());
    Place(std::move(v));
    return true;
  }
  bool Number(int64_t v) {
    if (mode_ == kVocab) {
      out_->vocab.emplace_back(std::move(vocab_key_), v);
      return true;
    }
    // Keep nlohmann's DOM convention: non-negative integers are unsigned.
    if (v >= 0) return Value(json(static_cast<json::number_unsigned_t>(v)));
    return Value(json(v));
  }
  bool Open(json&& v) {
    std::string k = (stack_.empty() || stack_.back()->is_array()) ? std::string() : last_key_;
    stack_.push_back(Place(std::move(v)));
    keys_.push_back(std::move(k));
    return true;
  }

  TokenizerJson* out_;
  Mode mode_ = kDom;
  std::vector<json*> stack_;
  std::vector<std::string> keys_;
  std::string last_key_, vocab_key_;
  std::vector<std::string> pair_;
  bool saw_vocab_ = false;
  std::string error_;
};

}  // namespace

absl::StatusOr<TokenizerJson> ParseTokenizerJson(absl::string_view text) {
  TokenizerJson out;
  out.vocab.reserve(1 << 18);
  out.merges.reserve(1 << 19);
  Sax sax(&out);
  const bool ok = json::sax_parse(text.begin(), text.end(), &sax);
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer.json: ", sax.error().empty() ? "invalid JSON" : sax.error()));
  }
  if (!out.root.is_object()) {
    return absl::InvalidArgumentError("tokenizer.json: top level must be an object");
  }
  if (!sax.saw_vocab()) {
    return absl::InvalidArgumentError("tokenizer.json: missing object model.vocab");
  }
  return out;
}

absl::StatusOr<std::string> ReadMaybeXzFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, n);
  const bool read_error = std::ferror(f);
  std::fclose(f);
  if (read_error) return absl::DataLossError(absl::StrCat("error reading ", path));
  if (!absl::EndsWith(path, ".xz")) return data;

  lzma_stream strm = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&strm, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) {
    return absl::InternalError("lzma_stream_decoder failed");
  }
  std::string out;
  out.resize(data.size() * 10 + (1 << 16));
  strm.next_in = reinterpret_cast<const uint8_t*>(data.data());
  strm.avail_in = data.size();
  size_t produced = 0;
  lzma_ret ret = LZMA_OK;
  while (true) {
    if (produced == out.size()) out.resize(out.size() * 2);
    strm.next_out = reinterpret_cast<uint8_t*>(out.data() + produced);
    strm.avail_out = out.size() - produced;
    ret = lzma_code(&strm, LZMA_FINISH);
    produced = out.size() - strm.avail_out;
    if (ret == LZMA_STREAM_END) break;
    if (ret != LZMA_OK) break;
  }
  lzma_end(&strm);
  if (ret != LZMA_STREAM_END) {
    return absl::DataLossError(absl::StrCat(path, ": corrupt .xz data (lzma error ", ret, ")"));
  }
  out.resize(produced);
  return out;
}

}  // namespace g4::tokenizer_internal
