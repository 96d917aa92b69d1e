// Shared machinery of the list-scheduling placers (HEFT, CPOP, m-ETF, m-SCT, GETF, m-TOPO):
//  - mean costs and HEFT ranks over a CostTable,
//  - MemoryGuard: a conservative memory-feasibility rule with a packing look-ahead,
//  - ListScheduler: a partial schedule that evaluates "operator o on device d" (earliest start / finish, with
//    or without insertion, with or without send/receive-port contention, reusing data already received) and
//    commits it. Its result carries the per-device order and the transfer priorities, so the simulator
//    reproduces the planned schedule (or a left-shifted, never longer one).
//  - run_etf: the earliest-time-first loop shared by m-ETF, m-SCT and GETF.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/placer.h"

namespace moirai::place {

/// Mean operator time over devices.
double mean_time(const CostTable& table, OpId op);
/// Mean transfer time of a data item over ordered device pairs src != dst (0 with one device).
double mean_transfer(const CostTable& table, int data);
/// HEFT upward rank: mean time + max over (data item, consumer) of (mean transfer + rank of the consumer).
std::vector<double> upward_rank(const CostTable& table);
/// HEFT downward rank: max over (producer, data item) of (rank + mean time of the producer + mean transfer).
std::vector<double> downward_rank(const CostTable& table);
/// Position of every operator in table.topo_order.
std::vector<int> topo_position(const CostTable& table);
/// A key for ordering by a real value that treats values within 1e-9 (relative to `scale`) as ties, so
/// ranks that are equal on paper (sums of thirds) tie in the code too.
long long quantize(double value, double scale);

/// Memory feasibility, conservative by design: a device's use is its operators' parameters plus every data item
/// produced on it or received by it, counted once and never freed. The simulator frees activations after their
/// last consumer, so its peak can only be lower: a plan accepted here always fits. To avoid dead ends (greedy
/// choices that leave later operators nowhere to go), fits() also checks that the operators not placed yet
/// can still be packed into what remains (best-fit decreasing, or an exact search when few remain).
class MemoryGuard {
 public:
  explicit MemoryGuard(const CostTable& table);
  /// An error when the whole model cannot be packed at all (names total bytes and capacities).
  Status check_model(const std::string& method) const;
  /// Bytes that placing `op` on `d` adds now.
  double added(OpId op, DeviceId d) const;
  /// True when `op` fits on `d` now and the rest stays packable.
  bool fits(OpId op, DeviceId d) const;
  /// True when every unplaced operator fits on every device now (fits() would say so for each): room for the
  /// largest operator everywhere, and room left for all the rest. O(devices), so the ETF loop checks it once per
  /// step instead of calling fits() for every ready operator and device.
  bool fits_everywhere() const;
  /// True when `op` fits on `d` now (no look-ahead).
  bool fits_now(OpId op, DeviceId d) const;
  void place(OpId op, DeviceId d);
  /// The user-facing error when `op` fits on no device.
  Error no_room(const std::string& method, OpId op) const;
  /// A packing of every operator onto empty devices, as check_model finds it (device per operator); call on a
  /// fresh guard. Empty when none is found.
  std::vector<DeviceId> packing() const;
  double used(DeviceId d) const { return used_[static_cast<size_t>(d)]; }
  /// Upper bound of the bytes an operator brings to any device (parameters + inputs + outputs).
  double standalone(OpId op) const { return standalone_[static_cast<size_t>(op)]; }

 private:
  bool packable(const std::vector<double>& free, OpId skip, std::vector<DeviceId>* assignment) const;
  // Parameters + outputs of `op` (what it brings besides its inputs).
  double own(OpId op) const;

  const CostTable& t_;
  double eps_ = 0;
  std::vector<double> used_;
  std::vector<double> standalone_;
  std::vector<OpId> by_size_;            // operators by standalone bytes, largest first
  std::vector<char> placed_;
  std::vector<std::vector<DeviceId>> resident_;  // per data item: devices where it is counted
  double remaining_ = 0;                 // sum of standalone bytes of operators not placed
  double remaining_own_ = 0;             // sum of parameters + outputs of operators not placed
  double frontier_ = 0;                  // bytes of placed operators' outputs that unplaced operators read
  std::vector<int> unplaced_consumers_;  // per data item
  std::vector<double> frontier_resident_;  // per device: the part of frontier_ already counted there
  double max_remaining_ = 0;             // largest standalone bytes of any operator (an upper bound)
};

struct Interval {
  double start = 0;
  double end = 0;
};

/// Busy intervals of one resource (a device or a port), disjoint and sorted by start.
class Timeline {
 public:
  /// Earliest t >= ready with [t, t + duration) free; insertion = may use gaps, else after the last interval.
  double earliest(double ready, double duration, bool insertion) const;
  void book(double start, double end);
  double tail() const { return tail_; }

 private:
  std::vector<Interval> busy_;
  double tail_ = 0;
};

/// The outcome of evaluating one operator on one device.
struct Trial {
  DeviceId device = -1;
  double start = 0;
  double finish = 0;
  double data_ready = 0;  ///< when the last input arrives
  std::vector<TransferSpan> transfers;
};

class ListScheduler {
 public:
  /// contention: book send/receive ports (options.sim.contention); insertion: operators and transfers may use
  /// idle gaps (HEFT/CPOP), else they go after the last booking (ETF family).
  ListScheduler(const CostTable& table, bool contention, bool insertion);

  /// Earliest start/finish of `op` on `d`; all producers of its inputs must be placed.
  Trial evaluate(OpId op, DeviceId d) const;
  /// When the inputs of `op` would be on `d` if transfers never waited for a port (no booking).
  double data_ready(OpId op, DeviceId d) const;
  void commit(OpId op, const Trial& trial);

  bool placed(OpId op) const { return device_[static_cast<size_t>(op)] != kNone; }
  DeviceId device(OpId op) const { return device_[static_cast<size_t>(op)]; }
  double finish(OpId op) const { return finish_[static_cast<size_t>(op)]; }
  double device_free(DeviceId d) const { return compute_[static_cast<size_t>(d)].tail(); }
  /// Operators whose predecessors are all placed become ready; commit() reports them through this.
  const std::vector<OpId>& newly_ready() const { return newly_ready_; }
  /// Operators with no predecessors.
  std::vector<OpId> sources() const;
  /// Distinct successors of an operator.
  const std::vector<OpId>& successors(OpId op) const { return succ_[static_cast<size_t>(op)]; }

  /// The plan: device per operator, per-device order by planned start, transfer priorities = planned starts,
  /// objective_ms = planned makespan.
  PlaceResult result() const;

 private:
  const CostTable& t_;
  bool contention_, insertion_;
  std::vector<DeviceId> device_;
  std::vector<double> start_, finish_;
  std::vector<long> seq_;
  long next_seq_ = 0;
  std::vector<Timeline> compute_, send_, recv_;
  std::vector<std::vector<std::pair<DeviceId, double>>> arrival_;  // per data item: (device, arrival)
  std::vector<TransferSpan> transfers_;
  std::vector<std::vector<OpId>> succ_;
  std::vector<int> missing_preds_;
  std::vector<OpId> newly_ready_;
};

/// HEFT's device choice: the device (that fits in memory) where `op` finishes first; device -1 when none fits.
Trial earliest_finish(const ListScheduler& sched, const MemoryGuard& guard, OpId op, int num_devices);

/// Hooks that turn the ETF loop into m-ETF, m-SCT or GETF.
struct EtfRules {
  /// May `op` go on `d`? Empty = any device. When no allowed device fits in memory, any device is tried.
  std::function<bool(OpId, DeviceId)> allowed;
  /// m-SCT: favourite child per operator (kNone = none). Baechi's SCT rules: a device is kept for the favourite
  /// child of the operator it ran last while that child is ready, unplaced and starts there no later than on any
  /// other device; another operator may start on a kept device only from its urgent time (the latest of its
  /// earliest starts over the devices it may use).
  std::vector<OpId> favourite;
  /// Seconds of options.time_limit_s the placer has spent already (its LP); the ETF loop gets the rest.
  double spent_s = 0;
  /// The placer's mode (how its LP went); the result's mode, with the time-limit fallback appended when used.
  std::string mode;
};

/// Earliest-time-first list scheduling (non-insertion, event order): repeatedly place the ready operator and
/// device pair with the earliest start (ties: earliest finish, larger upward rank, topological position,
/// device id), only on devices where the MemoryGuard accepts it. Once 90% of the time left (time_limit_s -
/// rules.spent_s) is spent, or options.stop says so, the remaining operators are placed in one pass by upward rank,
/// each on the device where it finishes first, and the mode says so (ETF's scan is quadratic in the ready set).
Expected<PlaceResult> run_etf(const CostTable& table, const PlaceOptions& options, const EtfRules& rules,
                              const std::string& method);

}  // namespace moirai::place
