// CostTable invariants: sizes, data items, and the derived adjacency (op_inputs, op_outputs, topo_order).
#include <algorithm>
#include <cmath>
#include <functional>
#include <queue>

#include <fmt/format.h>

#include "moirai/cost.h"

namespace moirai {
namespace {

// Names an operator on a cycle among the operators Kahn's algorithm could not order: walk predecessors
// that are still unordered until one repeats.
std::string op_on_cycle(const CostTable& t, const std::vector<int>& indegree) {
  OpId start = kNone;
  for (OpId op = 0; op < t.num_ops(); ++op)
    if (indegree[static_cast<size_t>(op)] > 0) {
      start = op;
      break;
    }
  std::vector<char> seen(static_cast<size_t>(t.num_ops()), 0);
  OpId cur = start;
  while (!seen[static_cast<size_t>(cur)]) {
    seen[static_cast<size_t>(cur)] = 1;
    OpId next = kNone;
    for (int id : t.op_inputs[static_cast<size_t>(cur)]) {
      const OpId p = t.data[static_cast<size_t>(id)].producer;
      if (indegree[static_cast<size_t>(p)] > 0) {
        next = p;
        break;
      }
    }
    if (next == kNone) break;  // cannot happen on a real cycle; keep the last one
    cur = next;
  }
  return t.op_names[static_cast<size_t>(cur)];
}

}  // namespace

std::vector<OpId> CostTable::predecessors(OpId op) const {
  std::vector<OpId> out;
  for (int id : op_inputs[static_cast<size_t>(op)]) out.push_back(data[static_cast<size_t>(id)].producer);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<OpId> CostTable::successors(OpId op) const {
  std::vector<OpId> out;
  for (int id : op_outputs[static_cast<size_t>(op)])
    for (OpId c : data[static_cast<size_t>(id)].consumers) out.push_back(c);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status CostTable::finalize() {
  const auto n = static_cast<size_t>(num_ops());
  const auto k = static_cast<size_t>(num_devices());
  const std::string where = name.empty() ? std::string("cost table") : name;
  auto fail = [&](const std::string& what) -> Status { return Error{where + ": " + what}; };
  if (k == 0) return fail("no devices");
  if (capacity.size() != k) return fail(fmt::format("{} capacities for {} devices", capacity.size(), k));
  if (stage_overhead_ms.empty()) stage_overhead_ms.assign(k, 0.0);
  if (stage_overhead_ms.size() != k)
    return fail(fmt::format("{} stage overheads for {} devices", stage_overhead_ms.size(), k));
  if (time_ms.size() != n * k)
    return fail(fmt::format("time table has {} entries, expected {} operators x {} devices", time_ms.size(), n, k));
  // Descriptive columns may be left empty by hand-built tables; fill them with neutral values.
  if (op_types.empty()) op_types.assign(n, "");
  if (op_origin.empty())
    for (size_t i = 0; i < n; ++i) op_origin.push_back({op_names[i]});
  if (param_bytes.empty()) param_bytes.assign(n, 0.0);
  if (state_bytes.empty()) state_bytes.assign(n, 0.0);
  if (flops.empty()) flops.assign(n, 0.0);
  if (op_types.size() != n || op_origin.size() != n || param_bytes.size() != n || flops.size() != n ||
      state_bytes.size() != n)
    return fail(fmt::format("per-operator columns must have {} entries (types {}, origin {}, param_bytes {}, flops {})",
                            n, op_types.size(), op_origin.size(), param_bytes.size(), flops.size()));
  for (size_t i = 0; i < n * k; ++i)
    if (!(time_ms[i] >= 0) || !std::isfinite(time_ms[i]))
      return fail(fmt::format("operator '{}' has time {} ms on device '{}'", op_names[i / k], time_ms[i],
                              device_names[i % k]));

  op_inputs.assign(n, {});
  op_outputs.assign(n, {});
  for (size_t id = 0; id < data.size(); ++id) {
    DataItem& item = data[id];
    if (item.producer < 0 || static_cast<size_t>(item.producer) >= n)
      return fail(fmt::format("data '{}' has producer {} out of range", item.name, item.producer));
    if (item.transfer_ms.size() != k * k)
      return fail(fmt::format("data '{}' has {} transfer times, expected {}", item.name, item.transfer_ms.size(), k * k));
    for (size_t d = 0; d < k; ++d) item.transfer_ms[d * k + d] = 0.0;  // same device: free by definition
    for (double x : item.transfer_ms)
      if (!(x >= 0) || !std::isfinite(x)) return fail(fmt::format("data '{}' has a transfer time of {}", item.name, x));
    std::sort(item.consumers.begin(), item.consumers.end());
    item.consumers.erase(std::unique(item.consumers.begin(), item.consumers.end()), item.consumers.end());
    op_outputs[static_cast<size_t>(item.producer)].push_back(static_cast<int>(id));
    for (OpId c : item.consumers) {
      if (c < 0 || static_cast<size_t>(c) >= n)
        return fail(fmt::format("data '{}' has consumer {} out of range", item.name, c));
      if (c == item.producer)
        return fail(fmt::format("operator '{}' consumes its own output '{}'", op_names[static_cast<size_t>(c)], item.name));
      op_inputs[static_cast<size_t>(c)].push_back(static_cast<int>(id));
    }
  }

  // Kahn's algorithm with the smallest ready id first.
  std::vector<int> indegree(n, 0);
  for (size_t op = 0; op < n; ++op) indegree[op] = static_cast<int>(predecessors(static_cast<OpId>(op)).size());
  std::priority_queue<OpId, std::vector<OpId>, std::greater<>> ready;
  for (size_t op = 0; op < n; ++op)
    if (indegree[op] == 0) ready.push(static_cast<OpId>(op));
  topo_order.clear();
  topo_order.reserve(n);
  while (!ready.empty()) {
    const OpId op = ready.top();
    ready.pop();
    topo_order.push_back(op);
    for (OpId s : successors(op))
      if (--indegree[static_cast<size_t>(s)] == 0) ready.push(s);
  }
  if (topo_order.size() != n) {
    const std::string culprit = op_on_cycle(*this, indegree);
    topo_order.clear();
    return fail("the operators form a cycle through '" + culprit + "'");
  }
  return Ok{};
}

bool CostTable::models_stages() const {
  return std::any_of(stage_overhead_ms.begin(), stage_overhead_ms.end(), [](double ms) { return ms > 0; });
}

std::string CostTable::memory_summary() const {
  double params = 0;
  for (double p : param_bytes) params += p;
  std::string caps;
  for (size_t d = 0; d < device_names.size(); ++d)
    caps += (d ? ", " : "") + device_names[d] + " " + fmt::format("{:g}", capacity[d]);
  return fmt::format("'{}' has {:g} {} of parameters; capacities: {}", name, params, memory_unit, caps);
}

CostTable CostTable::with_devices_only() const {
  CostTable t;
  t.name = name;
  t.cluster = cluster;
  t.per_edge_data = per_edge_data;
  t.device_names = device_names;
  t.capacity = capacity;
  t.reserved = reserved;
  t.device_kinds = device_kinds;
  t.stage_overhead_ms = stage_overhead_ms;
  t.memory_unit = memory_unit;
  return t;
}

}  // namespace moirai
