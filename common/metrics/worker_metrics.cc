#include "common/metrics/worker_metrics.h"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace g4 {

const std::vector<double>& WorkerStepBuckets() {
  static const auto* b = new std::vector<double>{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                 0.05,   0.075, 0.1,    0.25,  0.5,  0.75,
                                                 1.0,    2.5,   5.0,    10.0};
  return *b;
}

const std::vector<double>& CollectiveBuckets() {
  static const auto* b = new std::vector<double>{
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,     0.1,     0.25,   0.5,     1.0,    2.5,   5.0,    10.0};
  return *b;
}

const char* CollectiveOpName(CollectiveOp op) {
  switch (op) {
    case CollectiveOp::kAllReduce:
      return "all_reduce";
    case CollectiveOp::kAllGather:
      return "all_gather";
    case CollectiveOp::kBroadcast:
      return "broadcast";
    case CollectiveOp::kBarrier:
      return "barrier";
    case CollectiveOp::kAllToAll:
      return "all_to_all";
  }
  return "unknown";
}

int64_t ProcessResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  if (n != 2) return -1;
  const long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? static_cast<int64_t>(resident) * page : -1;
}

WorkerMetrics::WorkerMetrics(prometheus::Registry& registry, WorkerMetricsOptions options)
    : options_(std::move(options)), registry_(registry) {}

absl::StatusOr<std::unique_ptr<WorkerMetrics>> WorkerMetrics::Create(
    prometheus::Registry& registry, WorkerMetricsOptions options) {
  if (absl::Status s = ValidateMetricsPrefix(options.prefix); !s.ok()) return s;
  if (options.model_name.empty()) {
    return absl::InvalidArgumentError("WorkerMetrics: model_name is empty");
  }
  std::unique_ptr<WorkerMetrics> m(new WorkerMetrics(registry, std::move(options)));
  try {
    m->Register();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("WorkerMetrics: registering the metric families: ", e.what()));
  }
  return m;
}

prometheus::Labels WorkerMetrics::BaseLabels() const {
  return {{"model_name", options_.model_name},
          {"rank", absl::StrCat(options_.rank)},
          {"replica", absl::StrCat(options_.replica)}};
}

void WorkerMetrics::Register() {
  const std::string& p = options_.prefix;
  const prometheus::Labels labels = BaseLabels();
  step_family_ = &prometheus::BuildHistogram()
                      .Name(absl::StrCat(p, "worker_step_duration_seconds"))
                      .Help("Wall time of one forward step on this rank, in seconds.")
                      .Register(registry_);
  collective_family_ = &prometheus::BuildHistogram()
                            .Name(absl::StrCat(p, "worker_collective_duration_seconds"))
                            .Help("Wall time of one collective on this rank, by op and "
                                  "communicator group, in seconds.")
                            .Register(registry_);
  weights_bytes_family_ = &prometheus::BuildGauge()
                               .Name(absl::StrCat(p, "worker_weights_loaded_bytes"))
                               .Help("Bytes of model weights in this rank's loaded shard.")
                               .Register(registry_);
  weights_seconds_family_ = &prometheus::BuildGauge()
                                 .Name(absl::StrCat(p, "worker_weights_load_seconds"))
                                 .Help("How long loading this rank's shard took, in seconds.")
                                 .Register(registry_);
  memory_family_ = &prometheus::BuildGauge()
                        .Name(absl::StrCat(p, "worker_resident_memory_bytes"))
                        .Help("Resident memory of the worker process, in bytes.")
                        .Register(registry_);
  step_ = &step_family_->Add(labels, WorkerStepBuckets());
  weights_bytes_ = &weights_bytes_family_->Add(labels);
  weights_seconds_ = &weights_seconds_family_->Add(labels);
  memory_ = &memory_family_->Add(labels);
  RefreshMemory();
}

WorkerMetrics::~WorkerMetrics() {
  absl::MutexLock lock(&mu_);
  for (Group& g : groups_) {
    for (prometheus::Histogram* h : g.ops) collective_family_->Remove(h);
  }
  if (step_ != nullptr) step_family_->Remove(step_);
  if (weights_bytes_ != nullptr) weights_bytes_family_->Remove(weights_bytes_);
  if (weights_seconds_ != nullptr) weights_seconds_family_->Remove(weights_seconds_);
  if (memory_ != nullptr) memory_family_->Remove(memory_);
}

void WorkerMetrics::ObserveStep(double seconds) { step_->Observe(seconds > 0 ? seconds : 0); }

void WorkerMetrics::ObserveCollective(absl::string_view group, CollectiveOp op, double seconds) {
  prometheus::Histogram* h = nullptr;
  {
    absl::MutexLock lock(&mu_);
    for (Group& g : groups_) {
      if (g.name == group) h = g.ops[static_cast<int>(op)];
    }
    if (h == nullptr) {
      Group g;
      g.name = std::string(group);
      for (int i = 0; i < kNumCollectiveOps; ++i) {
        prometheus::Labels l = BaseLabels();
        l["group"] = g.name;
        l["op"] = CollectiveOpName(static_cast<CollectiveOp>(i));
        g.ops[i] = &collective_family_->Add(l, CollectiveBuckets());
      }
      h = g.ops[static_cast<int>(op)];
      groups_.push_back(std::move(g));
    }
  }
  h->Observe(seconds > 0 ? seconds : 0);
}

void WorkerMetrics::SetWeightsLoaded(int64_t bytes, double seconds) {
  weights_bytes_->Set(static_cast<double>(bytes));
  weights_seconds_->Set(seconds);
}

void WorkerMetrics::RefreshMemory() {
  const int64_t bytes = ProcessResidentBytes();
  if (bytes >= 0) memory_->Set(static_cast<double>(bytes));
}

void WorkerMetrics::SetResidentMemory(int64_t bytes) {
  memory_->Set(static_cast<double>(bytes));
}

}  // namespace g4
