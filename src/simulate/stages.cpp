// Stage assignment, shared by export and the simulator: a device's operators form one stage when they are
// contiguous in the data flow; when another device's work sits between them (a -> b -> a'), the device gets a
// second stage.
#include "moirai/stages.h"

#include <algorithm>
#include <queue>
#include <tuple>

#include <fmt/format.h>

namespace moirai {

Expected<Stages> assign_stages(const StageInput& input, const std::string& source) {
  const int n = static_cast<int>(input.device.size());
  std::vector<int> pending(static_cast<size_t>(n), 0);
  std::vector<std::vector<int>> succs(static_cast<size_t>(n));
  for (int op = 0; op < n; ++op)
    for (int p : input.preds[static_cast<size_t>(op)]) {
      ++pending[static_cast<size_t>(op)];
      succs[static_cast<size_t>(p)].push_back(op);
    }
  // Kahn's algorithm, earliest planned start first (ties by position): the stages follow the plan's timeline.
  using Key = std::tuple<double, int>;
  std::priority_queue<Key, std::vector<Key>, std::greater<>> ready;
  for (int op = 0; op < n; ++op)
    if (pending[static_cast<size_t>(op)] == 0) ready.emplace(input.start_ms[static_cast<size_t>(op)], op);

  Stages out;
  out.stage.assign(static_cast<size_t>(n), -1);
  std::vector<int> open;  // per device: its latest stage, -1 when none
  int placed = 0;
  while (!ready.empty()) {
    const int op = std::get<1>(ready.top());
    ready.pop();
    ++placed;
    const int dev = input.device[static_cast<size_t>(op)];
    MOIRAI_CHECK(dev >= 0, "assign_stages: negative device key");
    if (static_cast<int>(open.size()) <= dev) open.resize(static_cast<size_t>(dev) + 1, -1);
    int latest_pred = -1;
    for (int p : input.preds[static_cast<size_t>(op)]) latest_pred = std::max(latest_pred, out.stage[static_cast<size_t>(p)]);
    int s = open[static_cast<size_t>(dev)];
    if (s < 0 || latest_pred > s) {
      s = static_cast<int>(out.device.size());
      out.device.push_back(dev);
      out.ops.emplace_back();
      open[static_cast<size_t>(dev)] = s;
    }
    out.stage[static_cast<size_t>(op)] = s;
    out.ops[static_cast<size_t>(s)].push_back(op);
    for (int succ : succs[static_cast<size_t>(op)])
      if (--pending[static_cast<size_t>(succ)] == 0) ready.emplace(input.start_ms[static_cast<size_t>(succ)], succ);
  }
  if (placed != n) {
    for (int op = 0; op < n; ++op)
      if (pending[static_cast<size_t>(op)] > 0)
        return Error{fmt::format("{}: operators depend on each other in a cycle through '{}' (a fused group that "
                                 "is not convex?)", source, input.names[static_cast<size_t>(op)])};
  }
  return out;
}

}  // namespace moirai
