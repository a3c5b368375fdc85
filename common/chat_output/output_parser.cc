#include "common/chat_output/output_parser.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"
#include "common/chat_output/gemma_tool_args.h"

namespace g4 {
namespace {

constexpr absl::string_view kChannelOpen = "<|channel>";
constexpr absl::string_view kChannelClose = "<channel|>";
constexpr absl::string_view kToolCallOpen = "<|tool_call>";
constexpr absl::string_view kToolCallClose = "<tool_call|>";
constexpr absl::string_view kToolResponseOpen = "<|tool_response>";
constexpr absl::string_view kToolResponseClose = "<tool_response|>";
constexpr absl::string_view kTurnOpen = "<|turn>";
constexpr absl::string_view kTurnClose = "<turn|>";
constexpr absl::string_view kEos = "<eos>";
constexpr absl::string_view kThoughtHeader = "thought\n";
constexpr absl::string_view kThoughtName = "thought";
constexpr absl::string_view kCallPrefix = "call:";

enum class Action {
  kEnterReasoning,  // `<|channel>`: go to the channel-name check, then reasoning
  kLeaveReasoning,  // `<channel|>` while in reasoning
  kOpenToolCall,    // `<|tool_call>`
  kCloseToolCall,   // `<tool_call|>` while in a tool call
  kDrop,            // stray marker: removed, state unchanged
  kEnd,             // stop token / turn boundary: end of output
};

struct Marker {
  absl::string_view text;
  Action action;
};

// Every marker starts with '<' and contains no other '<', so the only suffix of
// a buffer that can be an incomplete marker is the one starting at its last
// '<'.
constexpr Marker kContentMarkers[] = {
    {kChannelOpen, Action::kEnterReasoning},
    {kToolCallOpen, Action::kOpenToolCall},
    {kChannelClose, Action::kDrop},
    {kToolCallClose, Action::kDrop},
    {kToolResponseClose, Action::kDrop},
    {kToolResponseOpen, Action::kEnd},
    {kTurnClose, Action::kEnd},
    {kTurnOpen, Action::kEnd},
    {kEos, Action::kEnd},
};
constexpr Marker kReasoningMarkers[] = {
    {kChannelClose, Action::kLeaveReasoning},
    {kChannelOpen, Action::kEnterReasoning},
    {kToolCallOpen, Action::kOpenToolCall},
    {kToolCallClose, Action::kDrop},
    {kToolResponseClose, Action::kDrop},
    {kToolResponseOpen, Action::kEnd},
    {kTurnClose, Action::kEnd},
    {kTurnOpen, Action::kEnd},
    {kEos, Action::kEnd},
};
constexpr Marker kToolCallMarkers[] = {
    {kToolCallClose, Action::kCloseToolCall},
    {kToolResponseOpen, Action::kEnd},
    {kTurnClose, Action::kEnd},
    {kTurnOpen, Action::kEnd},
    {kEos, Action::kEnd},
};

// Length of an incomplete UTF-8 sequence at the end of `s` (0 if the tail is
// complete or not valid UTF-8 at all; invalid bytes are passed through, not
// held).
size_t IncompleteUtf8Tail(absl::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead byte
    size_t need = 0;
    if ((c & 0xE0) == 0xC0) {
      need = 2;
    } else if ((c & 0xF0) == 0xE0) {
      need = 3;
    } else if ((c & 0xF8) == 0xF0) {
      need = 4;
    }
    return need > back ? back : 0;
  }
  return 0;
}

// Moves an incomplete UTF-8 tail of `*s` into `*carry` (which must be empty).
void SplitIncompleteUtf8(std::string* s, std::string* carry) {
  const size_t tail = IncompleteUtf8Tail(*s);
  if (tail == 0) return;
  carry->append(s->data() + (s->size() - tail), tail);
  s->erase(s->size() - tail);
}

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
         static_cast<unsigned char>(c) >= 0x80;
}

struct ParsedCall {
  std::string name;
  std::string arguments_json;
};

// Parses the text between `<|tool_call>` and `<tool_call|>`: `call:NAME{...}`.
bool ParseCallBody(absl::string_view body, ParsedCall* call) {
  body = absl::StripAsciiWhitespace(body);
  if (!absl::ConsumePrefix(&body, kCallPrefix)) return false;
  const size_t brace = body.find('{');
  if (brace == absl::string_view::npos) return false;
  const absl::string_view name = absl::StripAsciiWhitespace(body.substr(0, brace));
  if (name.empty()) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  absl::StatusOr<nlohmann::json> args = ParseGemmaToolArguments(body.substr(brace));
  if (!args.ok() || !args->is_object()) return false;
  call->name = std::string(name);
  call->arguments_json = ToolArgumentsToJsonString(*args);
  return true;
}

}  // namespace

OutputStart OutputStartForPrompt(absl::string_view rendered_prompt) {
  const size_t open = rendered_prompt.rfind(kChannelOpen);
  if (open == absl::string_view::npos) return OutputStart::kContent;
  const size_t close = rendered_prompt.rfind(kChannelClose);
  if (close != absl::string_view::npos && close > open) return OutputStart::kContent;
  const absl::string_view rest = rendered_prompt.substr(open + kChannelOpen.size());
  // Only the channel name (or a part of it) so far: let the parser strip the
  // remainder.
  if (rest.size() < kThoughtHeader.size() && absl::StartsWith(kThoughtHeader, rest) &&
      rest != kThoughtName) {
    return OutputStart::kReasoningHeader;
  }
  return OutputStart::kReasoning;
}

StreamingOutputParser::StreamingOutputParser(OutputParserOptions options)
    : options_(std::move(options)) {
  switch (options_.start) {
    case OutputStart::kContent:
      state_ = State::kContent;
      break;
    case OutputStart::kReasoning:
      state_ = State::kReasoning;
      break;
    case OutputStart::kReasoningHeader:
      state_ = State::kReasoningHeader;
      break;
  }
}

OutputDelta StreamingOutputParser::Feed(absl::string_view text) {
  OutputDelta out;
  if (finished_) return out;
  out.content = std::move(content_carry_);
  out.reasoning = std::move(reasoning_carry_);
  content_carry_.clear();
  reasoning_carry_.clear();
  if (state_ != State::kDone) pending_.append(text.data(), text.size());
  Process(/*final=*/false, &out);
  SplitIncompleteUtf8(&out.content, &content_carry_);
  SplitIncompleteUtf8(&out.reasoning, &reasoning_carry_);
  return out;
}

OutputDelta StreamingOutputParser::Finish() {
  OutputDelta out;
  if (finished_) return out;
  out.content = std::move(content_carry_);
  out.reasoning = std::move(reasoning_carry_);
  content_carry_.clear();
  reasoning_carry_.clear();
  Process(/*final=*/true, &out);
  if (state_ == State::kToolCall) CloseToolCall(/*saw_close_marker=*/false, &out);
  state_ = State::kDone;
  pending_.clear();
  finished_ = true;
  return out;
}

void StreamingOutputParser::End() {
  saw_end_marker_ = true;
  state_ = State::kDone;
  pending_.clear();
}

void StreamingOutputParser::CloseToolCall(bool saw_close_marker, OutputDelta* out) {
  ParsedCall call;
  if (ParseCallBody(call_body_, &call)) {
    const int index = num_tool_calls_++;
    std::string id =
        options_.tool_call_id ? options_.tool_call_id(index) : absl::StrCat("call_", index);
    out->tool_calls.push_back(
        ToolCall{std::move(id), std::move(call.name), std::move(call.arguments_json)});
  } else {
    // Malformed: hand the text back verbatim as content.
    absl::StrAppend(&out->content, kToolCallOpen, call_body_,
                    saw_close_marker ? kToolCallClose : "");
  }
  call_body_.clear();
}

void StreamingOutputParser::Process(bool final, OutputDelta* out) {
  while (true) {
    if (state_ == State::kDone) {
      pending_.clear();
      return;
    }
    if (state_ == State::kReasoningHeader) {
      // Strip the channel name `thought\n` (or `thought` alone) right after
      // `<|channel>`.
      const absl::string_view p = pending_;
      if (absl::StartsWith(p, kThoughtHeader)) {
        pending_.erase(0, kThoughtHeader.size());
      } else if (absl::StartsWith(kThoughtHeader,
                                  p)) {  // proper prefix (maybe empty): wait
        if (!final) return;
        if (p == kThoughtName) pending_.clear();
      } else if (absl::StartsWith(p, kThoughtName)) {
        pending_.erase(0, kThoughtName.size());
      }
      state_ = State::kReasoning;
      continue;
    }

    absl::Span<const Marker> markers;
    std::string* sink = nullptr;
    switch (state_) {
      case State::kContent:
        markers = kContentMarkers;
        sink = &out->content;
        break;
      case State::kReasoning:
        markers = kReasoningMarkers;
        sink = &out->reasoning;
        break;
      case State::kToolCall:
        markers = kToolCallMarkers;
        sink = &call_body_;
        break;
      default:
        return;
    }

    // Find the first complete marker, or stop at a trailing incomplete one.
    const absl::string_view buf = pending_;
    const Marker* found = nullptr;
    size_t pos = 0;
    size_t hold_from = buf.size();
    for (size_t at = buf.find('<'); at != absl::string_view::npos; at = buf.find('<', at + 1)) {
      const absl::string_view rest = buf.substr(at);
      for (const Marker& m : markers) {
        if (absl::StartsWith(rest, m.text)) {
          found = &m;
          break;
        }
        if (!final && rest.size() < m.text.size() && absl::StartsWith(m.text, rest)) {
          hold_from = at;
        }
      }
      if (found != nullptr) {
        pos = at;
        break;
      }
      if (hold_from != buf.size()) break;
    }
    if (found == nullptr) {
      sink->append(buf.data(), hold_from);
      pending_.erase(0, hold_from);
      return;
    }
    sink->append(buf.data(), pos);
    const Action action = found->action;
    pending_.erase(0, pos + found->text.size());
    switch (action) {
      case Action::kEnterReasoning:
        state_ = State::kReasoningHeader;
        break;
      case Action::kLeaveReasoning:
        state_ = State::kContent;
        break;
      case Action::kOpenToolCall:
        call_body_.clear();
        state_ = State::kToolCall;
        break;
      case Action::kCloseToolCall:
        CloseToolCall(/*saw_close_marker=*/true, out);
        state_ = State::kContent;
        break;
      case Action::kDrop:
        break;
      case Action::kEnd:
        if (state_ == State::kToolCall) CloseToolCall(/*saw_close_marker=*/false, out);
        End();
        break;
    }
  }
}

ParsedOutput ParseCompleteOutput(absl::string_view text, const OutputParserOptions& options) {
  StreamingOutputParser parser(options);
  ParsedOutput out;
  AppendDelta(parser.Feed(text), &out);
  AppendDelta(parser.Finish(), &out);
  return out;
}

void AppendDelta(const OutputDelta& delta, ParsedOutput* out) {
  out->reasoning += delta.reasoning;
  out->content += delta.content;
  out->tool_calls.insert(out->tool_calls.end(), delta.tool_calls.begin(), delta.tool_calls.end());
}

}  // namespace g4
