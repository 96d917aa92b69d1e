// HEFT: Heterogeneous Earliest Finish Time.
// Follows Topcuoglu, Hariri, Wu, "Performance-effective and low-complexity task scheduling for heterogeneous
// computing", IEEE TPDS 13(3), 2002: upward rank with mean operator times over devices and mean transfer times
// over device pairs src != dst; operators taken by decreasing rank; each goes to the device that gives the
// earliest finish time, using idle gaps (insertion-based policy).
// Departures from the paper:
//  - operators are taken from a ready list by rank (identical to the paper's sorted list whenever ranks strictly
//    decrease along edges; it also stays a topological order when zero-cost operators tie in rank). Equal ranks
//    (within 1e-9 relative) go by topological position;
//  - memory as a feasibility rule: a device is skipped when the operator would overflow it (MemoryGuard, which
//    counts parameters and every activation held or received and keeps the rest packable); no device -> Error;
//  - data: one transfer per (data item, destination device), later consumers there reuse it;
//  - with options.sim.contention the finish-time estimate books the source's send port and the destination's
//    receive port (one transfer at a time on each, as the simulator does); without it transfers never wait,
//    which is the paper's model and reproduces its example (schedule length 80).
#include <queue>

#include "list_schedule.h"
#include "placers.h"

namespace moirai {
namespace {

using place::ListScheduler;
using place::MemoryGuard;

class HeftPlacer final : public Placer {
 public:
  std::string name() const override { return "heft"; }
  std::string summary() const override {
    return "HEFT (Topcuoglu et al. 2002): upward rank, insertion-based earliest finish time, memory-aware";
  }

  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    MemoryGuard guard(table);
    MOIRAI_TRY(guard.check_model(name()));
    ListScheduler sched(table, options.sim.contention, /*insertion=*/true);
    const auto rank = place::upward_rank(table);
    const auto pos = place::topo_position(table);
    double scale = 0;
    for (double r : rank) scale = std::max(scale, r);
    // Max-heap on (quantized rank, -topological position).
    using Key = std::pair<long long, int>;
    std::priority_queue<std::pair<Key, OpId>> ready;
    auto push = [&](OpId op) {
      ready.push({{place::quantize(rank[static_cast<size_t>(op)], scale), -pos[static_cast<size_t>(op)]}, op});
    };
    for (OpId op : sched.sources()) push(op);
    while (!ready.empty()) {
      const OpId op = ready.top().second;
      ready.pop();
      place::Trial best = place::earliest_finish(sched, guard, op, table.num_devices());
      if (best.device == kNone) return guard.no_room(name(), op);
      guard.place(op, best.device);
      sched.commit(op, best);
      for (OpId c : sched.newly_ready()) push(c);
    }
    return sched.result();
  }
};

}  // namespace

std::unique_ptr<Placer> make_heft_placer() { return std::make_unique<HeftPlacer>(); }

}  // namespace moirai
