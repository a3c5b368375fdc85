// Splits Gemma 4 generated text into reasoning (thought channel), content and tool calls, both for
// a complete output and incrementally while streaming.
//
//   <|channel>thought\n ...reasoning... <channel|>   -> reasoning
//   <|tool_call>call:NAME{key:value,...}<tool_call|> -> ToolCall (arguments as a JSON string)
//   everything else                                  -> content
//   <|tool_response>, <turn|>, <|turn>, <eos>        -> end of output (the rest is ignored)
//
// Malformed tool calls fall back to plain content (verbatim, markers included); nothing is dropped
// except the markers themselves and stray closing markers. The grammar, the streaming hold-back
// rule and the fallbacks are documented in docs/output_parsing.md.
//
// Invariant (tested): for any split of a text into chunks, concatenating the deltas of
// StreamingOutputParser::Feed(chunk)... + Finish() gives exactly ParseCompleteOutput(text).
#ifndef G4SERVE_COMMON_CHAT_OUTPUT_OUTPUT_PARSER_H_
#define G4SERVE_COMMON_CHAT_OUTPUT_OUTPUT_PARSER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace g4 {

struct ToolCall {
  std::string id;              // "call_<n>" by default (see OutputParserOptions::tool_call_id)
  std::string name;            // function name
  std::string arguments_json;  // compact JSON object text, e.g.
                               // {"days":3,"location":"Paris"}
  bool operator==(const ToolCall&) const = default;
};

struct ParsedOutput {
  std::string reasoning;
  std::string content;
  std::vector<ToolCall> tool_calls;
  bool operator==(const ParsedOutput&) const = default;
};

// What one StreamingOutputParser call newly produced. Tool calls are delivered
// whole, once their closing marker has been seen (OpenAI streaming allows a
// tool call in a single delta); their index in the OpenAI `tool_calls` array is
// the number of tool calls delivered before them.
struct OutputDelta {
  std::string reasoning;
  std::string content;
  std::vector<ToolCall> tool_calls;
  bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
  bool operator==(const OutputDelta&) const = default;
};

// Where the generated text starts, relative to the thought channel. The prompt
// decides this: the output continues whatever the prompt left open.
enum class OutputStart {
  kContent,          // normal: the prompt ends outside any channel (also after an empty
                     // `<|channel>thought\n<channel|>` block, as 31B/26B render with
                     // thinking off)
  kReasoning,        // the prompt ends inside the thought channel after its header
                     // (`...<|channel>thought\n`): output is reasoning until
                     // `<channel|>`
  kReasoningHeader,  // the prompt ends right after `<|channel>`: the output may
                     // start with the channel name `thought\n`, which is
                     // stripped, then reasoning follows
};

struct OutputParserOptions {
  OutputStart start = OutputStart::kContent;
  // Produces the id of the n-th (0-based) tool call of this output. Default:
  // "call_<n>".
  std::function<std::string(int index)> tool_call_id;
};

// Inspects the rendered prompt (text fed to the model) and returns where its
// continuation starts: kContent unless the last `<|channel>` is not followed by
// a `<channel|>`.
OutputStart OutputStartForPrompt(absl::string_view rendered_prompt);

class StreamingOutputParser {
 public:
  explicit StreamingOutputParser(OutputParserOptions options = {});

  // Consumes the next piece of generated text (any split: inside markers,
  // inside UTF-8 sequences). Emits everything that can no longer change
  // meaning; holds back only (a) a suffix that is a proper prefix of a marker,
  // (b) the body of an open tool call, (c) the channel name right after
  // `<|channel>` until it is known whether it is `thought\n`, and (d) an
  // incomplete trailing UTF-8 sequence (so every delta is valid UTF-8 when the
  // whole text is). After Finish or an end marker, input is ignored.
  OutputDelta Feed(absl::string_view text);

  // End of generation: flushes everything held back. An unterminated tool call
  // becomes a tool call if its body is complete and valid, plain content
  // otherwise. Idempotent.
  OutputDelta Finish();

  // True once an end marker (<|tool_response>, <turn|>, <|turn>, <eos>) was
  // seen.
  bool saw_end_marker() const { return saw_end_marker_; }
  // Number of tool calls delivered so far.
  int num_tool_calls() const { return num_tool_calls_; }

 private:
  enum class State { kContent, kReasoningHeader, kReasoning, kToolCall, kDone };

  void Process(bool final, OutputDelta* out);
  void CloseToolCall(bool saw_close_marker, OutputDelta* out);
  void End();

  OutputParserOptions options_;
  State state_;
  std::string pending_;          // unprocessed input
  std::string call_body_;        // text after `<|tool_call>` of the open tool call
  std::string content_carry_;    // incomplete UTF-8 tail of content not yet emitted
  std::string reasoning_carry_;  // same for reasoning
  int num_tool_calls_ = 0;
  bool saw_end_marker_ = false;
  bool finished_ = false;
};

// Non-streaming parse; identical to one Feed(text) followed by Finish().
ParsedOutput ParseCompleteOutput(absl::string_view text, const OutputParserOptions& options = {});

// Appends `delta` to `*out` (concatenates strings, appends tool calls).
void AppendDelta(const OutputDelta& delta, ParsedOutput* out);

}  // namespace g4

#endif  // G4SERVE_COMMON_CHAT_OUTPUT_OUTPUT_PARSER_H_
