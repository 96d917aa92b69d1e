// m-ETF: memory-constrained Earliest Time First.
// Follows Baechi (Jeon, Cai, Srivastava, Gupta, SoCC 2020), which adapts ETF (Hwang, Chow, Anger, Lee, SIAM J.
// Comput. 1989): event by event, the ready operator and device pair that can start earliest is scheduled, but
// only on a device where the operator fits in the free memory; one communication channel per device and a cache
// of tensors already received (a tensor goes to a device once).
// Departures from Baechi:
//  - heterogeneous devices: start and finish times use each device's own operator time and each device pair's
//    own transfer time (Baechi assumed identical devices); ties in start go to the earlier finish, then the
//    larger upward rank, topological position and device id;
//  - the channel model is the simulator's: one send and one receive port per device (options.sim.contention;
//    off = transfers never wait);
//  - memory: MemoryGuard (parameters plus every activation held or received, never freed, which is Baechi's
//    conservative accounting) with a packing look-ahead so that tight capacities do not lead to a dead end.
#include "list_schedule.h"
#include "placers.h"

namespace moirai {
namespace {

class MetfPlacer final : public Placer {
 public:
  std::string name() const override { return "m-etf"; }
  std::string summary() const override {
    return "m-ETF (Baechi 2020): earliest-time-first list scheduling within free memory";
  }
  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    return place::run_etf(table, options, {}, name());
  }
};

}  // namespace

std::unique_ptr<Placer> make_metf_placer() { return std::make_unique<MetfPlacer>(); }

}  // namespace moirai
