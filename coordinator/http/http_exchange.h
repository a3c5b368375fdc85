// One HTTP request's response side, shared between the event loop (coordinator/http/
// event_http_server.h), which owns the connection, and whichever thread answers the request (the
// loop itself for cheap routes, a generation thread for completions). The answering thread
// frames the response here (status line, headers, Content-Length or chunked transfer coding for
// streams) and posts it to the loop, which writes it without blocking; no thread ever waits for
// a slow client. When the connection closes (client gone, write deadline, server stop) the
// exchange is marked gone: later writes are dropped and `client_gone()` turns true, which is how
// a generation learns to cancel its request.
//
// Thread-safe. Exactly one of Respond(), or StartStream() + Write()* + Finish(), per exchange;
// calls out of that order are ignored.
#ifndef G4SERVE_COORDINATOR_HTTP_HTTP_EXCHANGE_H_
#define G4SERVE_COORDINATOR_HTTP_HTTP_EXCHANGE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace g4 {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// The reason phrase of an HTTP status code ("Not Found"); "Unknown" for codes it does not know.
absl::string_view HttpReasonPhrase(int status);

// Where an exchange announces new output: the event loop's wake-up queue. Posting after the loop
// stopped is a no-op.
class HttpMailbox {
 public:
  virtual ~HttpMailbox() = default;
  virtual void Post(uint64_t connection_id) = 0;
};

class HttpExchange {
 public:
  // `minor_version` and `keep_alive` come from the request: they decide the framing (chunked
  // streams for HTTP/1.1, close-delimited for HTTP/1.0) and the Connection header.
  HttpExchange(std::shared_ptr<HttpMailbox> mailbox, uint64_t connection_id, int minor_version,
               bool keep_alive);

  // A whole response with Content-Length.
  void Respond(int status, absl::string_view content_type, absl::string_view body,
               const HttpHeaders& headers = {});
  // The head of a streamed response of unknown length; then Write() and Finish().
  void StartStream(int status, absl::string_view content_type, const HttpHeaders& headers = {});
  // Appends to the stream; false once the client is gone.
  bool Write(absl::string_view data);
  // Ends the stream.
  void Finish();

  bool client_gone() const { return gone_.load(std::memory_order_acquire); }

  // --- the event loop's side ---
  struct Output {
    std::string bytes;      // ready to send, in order
    bool complete = false;  // the response is whole (after these bytes)
    bool keep_alive = false;
  };
  // Takes what is ready.
  Output Drain();
  // The connection is closed: drop output from now on.
  void MarkGone() { gone_.store(true, std::memory_order_release); }

 private:
  enum class Stage { kNew, kStreaming, kDone };

  std::string Head(int status, absl::string_view content_type, const HttpHeaders& headers,
                   const std::string* content_length) const;
  void Post() { mailbox_->Post(connection_id_); }

  const std::shared_ptr<HttpMailbox> mailbox_;
  const uint64_t connection_id_;
  const int minor_version_;
  const bool keep_alive_;
  std::atomic<bool> gone_{false};

  absl::Mutex mu_;
  Stage stage_ ABSL_GUARDED_BY(mu_) = Stage::kNew;
  bool close_after_ ABSL_GUARDED_BY(mu_) = false;  // HTTP/1.0 stream: ends with the connection
  std::string pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_HTTP_EXCHANGE_H_
