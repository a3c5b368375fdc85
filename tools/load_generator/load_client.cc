#include "tools/load_generator/load_client.h"

#include "tools/load_generator/grpc_client.h"
#include "tools/load_generator/http_client.h"

namespace g4::load {

absl::StatusOr<std::unique_ptr<LoadClient>> MakeLoadClient(const LoadOptions& options) {
  switch (options.backend) {
    case Backend::kGrpc:
      return std::make_unique<GrpcLoadClient>(options);
    case Backend::kHttp:
      return std::make_unique<HttpLoadClient>(options);
  }
  return absl::InvalidArgumentError("unknown backend");
}

}  // namespace g4::load
