#include "common/metrics/capacity_metrics.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/gauge.h"

namespace g4 {
absl::StatusOr<std::unique_ptr<CapacityMetrics>> CapacityMetrics::Create(
    prometheus::Registry& registry, CapacityMetricsOptions options) {
  if (absl::Status s = ValidateMetricsPrefix(options.prefix); !s.ok()) return s;
  if (options.model_name.empty()) {
    return absl::InvalidArgumentError("CapacityMetrics: model_name is empty");
  }
  std::unique_ptr<CapacityMetrics> m(new CapacityMetrics(registry, std::move(options)));
  try {
    m->Register();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("CapacityMetrics: registering the metric families: ", e.what()));
  }
  return m;
}

void CapacityMetrics::Register() {
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge()
                .Name(absl::StrCat(options_.prefix, name))
                .Help(help)
                .Register(registry_);
  };
  absl::MutexLock lock(&mu_);
  pages_.family = gauge("kv_cache_pages", "KV cache pages of one pool of one READY replica.");
  available_.family = gauge("kv_cache_available_pages",
                            "KV cache pages new sequences can get now (free + cached), per pool "
                            "and READY replica.");
  peak_.family = gauge("kv_cache_peak_pages",
                       "Most KV cache pages used at once since the replica's engine started.");
  sequences_.family = gauge("capacity_sequences",
                            "More sequences of the context length `context` that fit now, per "
                            "replica (0 when not READY).");
  contexts_.family = gauge("capacity_context_tokens",
                           "Tokens of each context length capacity_sequences counts.");
  plan_.family = gauge("plan_info", "The parallel plan the replicas are formed with.");
}

void CapacityMetrics::Replace(GaugeSet& set, const std::map<prometheus::Labels, double>& samples) {
  for (auto it = set.series.begin(); it != set.series.end();) {
    if (samples.contains(it->first)) {
      ++it;
      continue;
    }
    set.family->Remove(it->second);
    it = set.series.erase(it);
  }
  for (const auto& [labels, value] : samples) {
    auto it = set.series.find(labels);
    if (it == set.series.end()) {
      prometheus::Labels all = labels;
      all["model_name"] = options_.model_name;
      it = set.series.emplace(labels, &set.family->Add(all)).first;
    }
    it->second->Set(value);
  }
}

void CapacityMetrics::SetReplicaCapacity(const std::vector<ReplicaCapacity>& replicas) {
  std::map<prometheus::Labels, double> pages, available, peak, sequences;
  for (const ReplicaCapacity& r : replicas) {
    const std::string replica = absl::StrCat(r.replica);
    for (const KvPoolPages& p : r.pools) {
      const prometheus::Labels l = {{"pool", p.pool}, {"replica", replica}};
      pages[l] = static_cast<double>(p.total);
      available[l] = static_cast<double>(p.available);
      peak[l] = static_cast<double>(p.peak);
    }
    for (const auto& [context, n] : r.sequences) {
      sequences[{{"context", context}, {"replica", replica}}] = static_cast<double>(n);
    }
  }
  absl::MutexLock lock(&mu_);
  Replace(pages_, pages);
  Replace(available_, available);
  Replace(peak_, peak);
  Replace(sequences_, sequences);
}

void CapacityMetrics::SetCapacityContexts(const std::map<std::string, int64_t>& tokens) {
  std::map<prometheus::Labels, double> samples;
  for (const auto& [context, n] : tokens) samples[{{"context", context}}] = static_cast<double>(n);
  absl::MutexLock lock(&mu_);
  Replace(contexts_, samples);
}

void CapacityMetrics::SetPlanInfo(const std::map<std::string, std::string>& labels) {
  prometheus::Labels l;
  for (const auto& [name, value] : labels) {
    if (IsMetricsLabelName(name) && name != "model_name") l[name] = value;
  }
  absl::MutexLock lock(&mu_);
  Replace(plan_, {{l, 1.0}});
}

}  // namespace g4
