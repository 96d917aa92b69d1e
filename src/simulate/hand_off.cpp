// The coordinator's hand-off around a request (moirai/simulate.h HandOff): what `moirai run` adds to a plan's
// schedule, computed in this one place for plan.json's and run.json's predicted_request_ms.
#include <algorithm>
#include <set>

#include "moirai/simulate.h"

namespace moirai {

HandOff hand_off(const Graph& graph, const Cluster& cluster, const Placement& placement) {
  const auto device_of = [&](OpId op) { return placement.device[static_cast<size_t>(op)]; };
  HandOff h;
  std::vector<double> output_bytes(static_cast<size_t>(cluster.size()), 0.0);
  for (const Tensor& t : graph.tensors()) {
    if (t.kind == TensorKind::Input) {
      std::set<DeviceId> readers;
      for (OpId op : t.consumers) readers.insert(device_of(op));
      for (DeviceId d : readers) h.push_ms += cluster.push_ms(d, static_cast<double>(t.bytes()));
    }
    if (t.graph_output && t.producer != kNone) output_bytes[static_cast<size_t>(device_of(t.producer))] += static_cast<double>(t.bytes());
  }
  for (DeviceId d = 0; d < cluster.size(); ++d) h.fetch_ms.push_back(cluster.fetch_ms(d, output_bytes[static_cast<size_t>(d)]));
  return h;
}

double request_ms(const Schedule& schedule, const Placement& placement, const HandOff& hand_off) {
  // Per device: its last operator's or outgoing transfer's end; -1 for a device without operators.
  std::vector<double> done(hand_off.fetch_ms.size(), -1.0);
  for (size_t op = 0; op < schedule.ops.size(); ++op) {
    double& d = done[static_cast<size_t>(placement.device[op])];
    d = std::max({d, 0.0, schedule.ops[op].end_ms});
  }
  for (const TransferSpan& x : schedule.transfers) {
    double& d = done[static_cast<size_t>(x.src)];
    d = std::max(d, x.end_ms);
  }
  double answered = 0;
  for (size_t d = 0; d < done.size(); ++d)
    if (done[d] >= 0) answered = std::max(answered, done[d] + hand_off.fetch_ms[d]);
  return hand_off.push_ms + answered;
}

}  // namespace moirai
