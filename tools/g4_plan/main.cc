// g4-plan: prints the parallel plan for a model directory (only config.json is read) on a set of
// devices, as a table or (--json) as the ParallelPlan message in protobuf JSON.
//   g4-plan --model DIR (--gpus N --gpu-memory 80GiB | --cpu-ranks N) [--max-context 262144] [--json]
// Errors (bad flags, bad config, does not fit): one line on stderr, exit 2.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/flags/flag_set.h"
#include "common/model_config.h"
#include "coordinator/planner/planner.h"
#include "tools/g4_plan/plan_options.h"

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "g4-plan: %s\n", std::string(status.message()).c_str());
  return 2;
}

std::string ModelName(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.rfind('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<g4::PlanOptions> options =
      g4::ParsePlanOptions(absl::MakeConstSpan(argv + 1, argc - 1));
  if (!options.ok()) return g4::FlagError("g4-plan", options.status());
  if (options->help) return g4::PrintUsage(g4::PlanUsage());
  const std::string path = options->model_dir + "/config.json";
  std::ifstream in(path);
  if (!in) return Fail(absl::NotFoundError(absl::StrCat("cannot read ", path)));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<g4::ModelConfig> config = g4::ParseModelConfig(text.str(), path);
  if (!config.ok()) return Fail(config.status());

  int64_t host_memory = 0;
  if (options->cpu_ranks > 0 && options->cpu_memory_bytes == 0) {
    absl::StatusOr<int64_t> m = g4::HostMemoryBytes();
    if (!m.ok()) return Fail(m.status());
    host_memory = *m;
  }
  absl::StatusOr<g4::PlanRequest> request =
      g4::MakePlanRequest(*options, ModelName(options->model_dir), host_memory);
  if (!request.ok()) return Fail(request.status());
  absl::StatusOr<g4serve::v1::ParallelPlan> plan = g4::MakePlan(*config, *request);
  if (!plan.ok()) return Fail(plan.status());
  if (absl::Status s = g4::CheckPlan(*config, *plan); !s.ok()) {
    return Fail(absl::InternalError(absl::StrCat("internal: plan fails its check: ", s.message())));
  }
  if (options->json) {
    absl::StatusOr<std::string> json = g4::FormatPlanJson(*plan);
    if (!json.ok()) return Fail(json.status());
    std::fputs(json->c_str(), stdout);
    if (json->empty() || json->back() != '\n') std::fputc('\n', stdout);
  } else {
    std::fputs(g4::FormatPlanTable(*plan).c_str(), stdout);
  }
  return 0;
}
