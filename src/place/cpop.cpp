// CPOP: Critical Path On a Processor.
// Follows Topcuoglu, Hariri, Wu, IEEE TPDS 13(3), 2002: priority = upward rank + downward rank (mean costs);
// the critical path is walked from the entry operator through successors of maximal priority; all of it goes
// on the one device that minimises the critical path's total time; every other operator, taken from a ready
// queue by priority, goes to the device with the earliest finish time (insertion-based).
// Departures from the paper:
//  - equal priorities (within 1e-9 relative) are ties, broken by topological position; with several entry
//    operators the critical path starts at the one of largest priority;
//  - memory as a feasibility rule (MemoryGuard, as in HEFT): the critical-path device is chosen among devices
//    that can hold the whole path; a critical-path operator that does not fit there after all falls back to
//    the earliest-finish device; no device -> Error;
//  - transfers as in HEFT: one per (data item, destination device); with options.sim.contention the estimate
//    books send and receive ports.
#include <queue>

#include "list_schedule.h"
#include "placers.h"

namespace moirai {
namespace {

using place::ListScheduler;
using place::MemoryGuard;

class CpopPlacer final : public Placer {
 public:
  std::string name() const override { return "cpop"; }
  std::string summary() const override {
    return "CPOP (Topcuoglu et al. 2002): critical path on one device, other operators by earliest finish time";
  }

  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    MemoryGuard guard(table);
    MOIRAI_TRY(guard.check_model(name()));
    ListScheduler sched(table, options.sim.contention, /*insertion=*/true);
    const auto up = place::upward_rank(table);
    const auto down = place::downward_rank(table);
    const auto pos = place::topo_position(table);
    const size_t n = static_cast<size_t>(table.num_ops());
    std::vector<double> prio(n);
    double scale = 0;
    for (size_t i = 0; i < n; ++i) scale = std::max(scale, prio[i] = up[i] + down[i]);
    std::vector<long long> q(n);
    for (size_t i = 0; i < n; ++i) q[i] = place::quantize(prio[i], scale);

    // Critical path: from the best entry, follow the successor of largest priority.
    std::vector<char> on_path(n, 0);
    std::vector<OpId> path;
    OpId cur = kNone;
    for (OpId op : sched.sources())
      if (cur == kNone || q[static_cast<size_t>(op)] > q[static_cast<size_t>(cur)]) cur = op;
    while (cur != kNone) {
      path.push_back(cur);
      on_path[static_cast<size_t>(cur)] = 1;
      OpId next = kNone;
      for (OpId s : sched.successors(cur))
        if (next == kNone || q[static_cast<size_t>(s)] > q[static_cast<size_t>(next)] ||
            (q[static_cast<size_t>(s)] == q[static_cast<size_t>(next)] && pos[static_cast<size_t>(s)] < pos[static_cast<size_t>(next)]))
          next = s;
      cur = next;
    }
    // The critical-path device: least total time among devices that can hold the path.
    DeviceId cp_dev = kNone;
    double cp_time = 0;
    double path_bytes = 0;  // parameters + every data item the path touches, once
    {
      std::vector<char> seen(table.data.size(), 0);
      for (OpId op : path) {
        path_bytes += table.param_bytes[static_cast<size_t>(op)];
        for (const auto* list : {&table.op_inputs[static_cast<size_t>(op)], &table.op_outputs[static_cast<size_t>(op)]})
          for (int data : *list)
            if (!seen[static_cast<size_t>(data)]++) path_bytes += table.data[static_cast<size_t>(data)].bytes;
      }
    }
    for (DeviceId d = 0; d < table.num_devices(); ++d) {
      double time = 0;
      const double bytes = path_bytes;
      for (OpId op : path) time += table.time(op, d);
      if (bytes > table.capacity[static_cast<size_t>(d)]) continue;
      if (cp_dev == kNone || time < cp_time) cp_dev = d, cp_time = time;
    }

    using Key = std::pair<long long, int>;
    std::priority_queue<std::pair<Key, OpId>> ready;
    auto push = [&](OpId op) { ready.push({{q[static_cast<size_t>(op)], -pos[static_cast<size_t>(op)]}, op}); };
    for (OpId op : sched.sources()) push(op);
    while (!ready.empty()) {
      const OpId op = ready.top().second;
      ready.pop();
      // The critical path goes to its processor; everything else (and a path op that no longer fits) as HEFT.
      const bool pinned = on_path[static_cast<size_t>(op)] && cp_dev != kNone && guard.fits(op, cp_dev);
      place::Trial best = pinned ? sched.evaluate(op, cp_dev) : place::earliest_finish(sched, guard, op, table.num_devices());
      if (best.device == kNone) return guard.no_room(name(), op);
      guard.place(op, best.device);
      sched.commit(op, best);
      for (OpId c : sched.newly_ready()) push(c);
    }
    return sched.result();
  }
};

}  // namespace

std::unique_ptr<Placer> make_cpop_placer() { return std::make_unique<CpopPlacer>(); }

}  // namespace moirai
