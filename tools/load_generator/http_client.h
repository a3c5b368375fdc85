// g4-load backend for the OpenAI-compatible HTTP API: POST /v1/completions with stream=true,
// read as server-sent events.
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_HTTP_CLIENT_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_HTTP_CLIENT_H_

#include <string>

#include "tools/load_generator/load_client.h"

namespace g4::load {

class HttpLoadClient : public LoadClient {
 public:
  // options.server is HOST:PORT (an "http://" prefix is accepted).
  explicit HttpLoadClient(const LoadOptions& options);
  RequestResult Send(const RequestSpec& spec) override;

  // The JSON body sent for `spec` (exposed for tests).
  std::string RequestBody(const RequestSpec& spec) const;

 private:
  LoadOptions options_;
  std::string host_;
  int port_ = 80;
};

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_HTTP_CLIENT_H_
