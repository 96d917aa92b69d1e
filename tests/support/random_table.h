// Test support: random placement problems (DAG cost tables) for property tests, and fixture paths.
#pragma once

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>

#include "moirai/cost.h"

namespace moirai::testing {

/// Path of a file in the source tree (fixtures, bundled models, clusters, instances).
inline std::string source_path(const std::string& relative) { return std::string(MOIRAI_SOURCE_DIR) + "/" + relative; }

/// A bundled profiled instance (instances/NAME.json); throws when it does not load.
inline CostTable instance(const std::string& name) {
  auto t = load_instance(source_path("instances/" + name + ".json"));
  if (!t.ok()) throw std::logic_error(t.error().message);
  return std::move(*t);
}

/// The id of the operator called `name`; throws when there is none.
inline OpId op_named(const CostTable& t, const std::string& name) {
  for (OpId op = 0; op < t.num_ops(); ++op)
    if (t.op_names[static_cast<size_t>(op)] == name) return op;
  throw std::logic_error("no operator " + name);
}

struct RandomTableSpec {
  int ops = 10;
  int devices = 3;
  double edge_probability = 0.3;  ///< chance of an edge i->j for i < j (plus a chain link to stay connected)
  int max_fanout = 3;             ///< data items per operator feed at most this many consumers
  bool memory = true;             ///< random parameter and activation bytes with capacities that fit
};

/// A random DAG problem: operator i only feeds j > i, so ids are a topological order. Deterministic per seed.
inline CostTable random_table(uint64_t seed, const RandomTableSpec& spec = {}) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  CostTable t;
  t.name = "random-" + std::to_string(seed);
  t.cluster = "random";
  const int n = spec.ops, k = spec.devices;
  for (int d = 0; d < k; ++d) t.device_names.push_back("dev" + std::to_string(d));
  std::vector<double> speed(static_cast<size_t>(k));
  for (auto& s : speed) s = 0.5 + unit(rng);
  double total_param = 0;
  for (int i = 0; i < n; ++i) {
    t.op_names.push_back("op" + std::to_string(i));
    t.op_types.push_back("Random");
    t.op_origin.push_back({t.op_names.back()});
    const double work = 1.0 + 9.0 * unit(rng);
    for (int d = 0; d < k; ++d) t.time_ms.push_back(work * speed[static_cast<size_t>(d)] * (0.8 + 0.4 * unit(rng)));
    t.param_bytes.push_back(spec.memory ? std::floor(100 * unit(rng)) : 0.0);
    t.flops.push_back(work * 1e9);
    total_param += t.param_bytes.back();
  }
  for (int i = 0; i + 1 < n; ++i) {
    DataItem item;
    item.name = "t" + std::to_string(i);
    item.producer = i;
    // Always feed the next operator (keeps the DAG connected), plus random later ones.
    item.consumers.push_back(i + 1);
    for (int j = i + 2; j < n && static_cast<int>(item.consumers.size()) < spec.max_fanout; ++j)
      if (unit(rng) < spec.edge_probability) item.consumers.push_back(j);
    item.bytes = spec.memory ? std::floor(50 * unit(rng)) : 0.0;
    const double base = 0.5 + 3.0 * unit(rng);
    item.transfer_ms.assign(static_cast<size_t>(k * k), 0.0);
    for (int s = 0; s < k; ++s)
      for (int d = 0; d < k; ++d)
        if (s != d) item.transfer_ms[static_cast<size_t>(s * k + d)] = base * (0.8 + 0.4 * unit(rng));
    t.data.push_back(std::move(item));
  }
  // Every device could hold the whole model: capacities bind only in tests that shrink them.
  double total_data = 0;
  for (const auto& item : t.data) total_data += item.bytes;
  t.capacity.assign(static_cast<size_t>(k), total_param + total_data + 1);
  auto status = t.finalize();
  if (!status.ok()) throw std::logic_error(status.error().message);
  return t;
}

/// A wide layered DAG (`width` operators per layer, each reading two operators of the previous layer): large
/// ready sets, the shape of the scale benchmarks.
inline CostTable layered_table(int ops, int devices, int width = 100) {
  RandomTableSpec spec;
  spec.ops = ops;
  spec.devices = devices;
  spec.edge_probability = 0;
  CostTable t = random_table(7, spec);
  std::mt19937_64 rng(7);
  for (auto& item : t.data) {
    const int i = item.producer;
    const int next_layer = (i / width + 1) * width;
    item.consumers.clear();
    for (int c = 0; c < 2 && next_layer < ops; ++c)
      item.consumers.push_back(std::min(ops - 1, next_layer + static_cast<int>(rng() % static_cast<uint64_t>(width))));
    std::sort(item.consumers.begin(), item.consumers.end());
    item.consumers.erase(std::unique(item.consumers.begin(), item.consumers.end()), item.consumers.end());
  }
  if (auto st = t.finalize(); !st.ok()) throw std::logic_error(st.error().message);
  return t;
}

}  // namespace moirai::testing
