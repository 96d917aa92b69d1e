// Memory-aware operator ordering: exact peak-memory accounting of an execution order on one device, and
// BTSearch (MemoriaNova), a backtracking search for the order with the smallest peak, made scalable by
// splitting the graph at cut operators and searching each part on its own (as HMCOS, DAC 2022, does).
//
// Memory model (the simulator's, for one device running its operators one at a time, in a given order):
//  - Parameters of every operator in the set are resident the whole time.
//  - A data item produced by an operator of the set is allocated when its producer starts and freed when its
//    last consumer in the set finishes. The memory of step k (operator order[k] running) is the parameters plus
//    every item live at step k, so an operator's working set is its inputs plus the outputs it is writing.
//  - An item with no consumer in the set (a graph output, or one only other devices read) lives to the end of
//    the order (MemoryModel::sent_outputs_until_end = false frees one read only by other devices when its
//    producer finishes instead; graph outputs always stay).
//  - An item produced outside the set (a copy received from another device) is allocated when its first
//    consumer in the set starts and freed when its last consumer in the set finishes. (The simulator allocates
//    it when the transfer arrives, which can be earlier: for a subset the peak here is the peak the order needs,
//    not a promise about the simulator's timing.)
//  - Optional in-place rule (MemoryModel::in_place, off by default): an elementwise operator (Relu, Add, Mul,
//    BatchNormalization, ...) with one output may write it into the buffer of an input that it is the only
//    consumer of, that was produced in the set and is at least as large; that step then needs no new memory for
//    the output.
// For one device running every operator, order_peak_memory equals Schedule::peak_memory of the simulator.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "moirai/cost.h"
#include "moirai/graph.h"
#include "moirai/placement.h"
#include "moirai/simulate.h"

namespace moirai {

/// Options of the peak-memory model (see the top of this file).
struct MemoryModel {
  bool in_place = false;               ///< elementwise operators may reuse a dying input's buffer
  bool sent_outputs_until_end = true;  ///< items read only by other devices stay until the end (conservative)
};

/// Peak memory (bytes) of running `order` on one device: parameters of its operators plus live data at the
/// worst step. `order` must be a topological order of the operators it lists (checked).
double order_peak_memory(const CostTable& table, const std::vector<OpId>& order, const MemoryModel& model = {});

/// Memory (bytes) of every step of `order`, same model; the peak is the maximum.
std::vector<double> order_memory_profile(const CostTable& table, const std::vector<OpId>& order,
                                         const MemoryModel& model = {});

/// True when `order` lists every operator of `ops` (all operators when `ops` is empty) exactly once and every
/// operator comes after its producers within that set.
bool is_topological_order(const CostTable& table, const std::vector<OpId>& ops, const std::vector<OpId>& order);

/// One execution order and its peak memory.
struct OrderResult {
  std::string method;        ///< "file", "dfs", "bfs", "greedy", "btsearch"
  std::vector<OpId> order;   ///< a topological order of the operators asked for
  double peak_bytes = 0;     ///< order_peak_memory of `order`
  double lower_bound = 0;    ///< a proven lower bound on the peak of any order (btsearch; 0 otherwise)
  double time_s = 0;         ///< wall-clock time spent finding the order
  bool optimal = false;      ///< proven to have the smallest peak of all topological orders
  int parts = 1;             ///< parts searched independently (btsearch with partitioning)
  long long states = 0;      ///< search states expanded (btsearch)
};

struct SearchOptions {
  MemoryModel memory;
  double time_limit_s = 10;  ///< wall-clock budget; the best order found so far is returned when it runs out
  bool partition = true;     ///< split at cut operators (every other operator is an ancestor or a descendant)
  long long max_memo_states = 4'000'000;  ///< cap on memoised executed-sets (bounds memory; pruning only)
};

/// Operators of `ops` (all when empty) in the order Kahn's algorithm gives with the smallest id first: the
/// model file's own order when the file is topologically sorted.
OrderResult file_order(const CostTable& table, const std::vector<OpId>& ops = {}, const MemoryModel& model = {});
/// Depth-first topological order: a stack of ready operators, the one made ready last runs next.
OrderResult dfs_order(const CostTable& table, const std::vector<OpId>& ops = {}, const MemoryModel& model = {});
/// Breadth-first topological order: a queue of ready operators.
OrderResult bfs_order(const CostTable& table, const std::vector<OpId>& ops = {}, const MemoryModel& model = {});
/// Greedy: always run the ready operator that leaves the least live memory (ties: lower step memory, lower id).
OrderResult greedy_order(const CostTable& table, const std::vector<OpId>& ops = {}, const MemoryModel& model = {});

/// BTSearch: depth-first search over executed sets seeded with the greedy order, with memoisation of the best
/// peak per executed set, pruning against the best complete order and a per-state lower bound, and a dominance
/// rule (an operator that frees at least what it allocates and does not raise the peak runs at once). With
/// options.partition the operators are split at cut operators and each part is searched exactly; the parts'
/// orders are concatenated. `ops` is a subset (e.g. the operators of one device); empty means all.
/// `optimal` is true when the search finished (or met a proven lower bound) before the time limit.
OrderResult btsearch(const CostTable& table, const std::vector<OpId>& ops = {}, const SearchOptions& options = {});

/// The parts btsearch searches independently: consecutive groups of a topological order, each ending at a cut
/// operator (comparable with every other operator of `ops`), so every topological order runs part 0, then
/// part 1, ... Exposed for tests.
std::vector<std::vector<OpId>> order_parts(const CostTable& table, const std::vector<OpId>& ops = {});

/// Per-device orders (one list per device, each device's operators once) made safe to run together: orders
/// found device by device (e.g. BTSearch's) can each be topological yet deadlock jointly (a1 before a2 on A,
/// b1 before b2 on B, with data b2 -> a1 and a2 -> b1). Merges them into one global topological order, always
/// taking some device's next operator when its inputs are done; only when no device can (the orders
/// deadlock) does an operator run early: the ready one closest to the front of its device's order. Returns
/// that order's per-device projections, which equal the given orders whenever they never deadlock.
std::vector<std::vector<OpId>> merge_device_orders(const CostTable& table, const std::vector<std::vector<OpId>>& orders);

/// BTSearch results remembered by the content of the ordering problem (precedence, items, bytes, parameters
/// and the search options): GenEFlow evaluates many candidates whose devices mostly run the same operator sets,
/// and a problem met again costs one fingerprint instead of a search. Not thread-safe; keeps at most
/// kMaxEntries problems (then starts afresh).
class OrderCache {
 public:
  static constexpr size_t kMaxEntries = 20000;
  /// btsearch(table, ops, options), or the remembered result of an identical problem.
  OrderResult btsearch(const CostTable& table, const std::vector<OpId>& ops, const SearchOptions& options);
  long long hits() const { return hits_; }
  long long misses() const { return misses_; }

 private:
  std::unordered_map<std::string, OrderResult> entries_;  ///< orders in local indices (sorted operator ids)
  long long hits_ = 0, misses_ = 0;
};

/// Per-device orders of a placement in which the devices flagged in `search` run BTSearch's order of their
/// operators and the others keep `current` (e.g. the simulator's order), merged so they run together
/// (merge_device_orders). Peaks and lower bounds are BTSearch's (its memory model), 0 for devices not searched.
struct MemoryOrders {
  std::vector<std::vector<OpId>> order;  ///< per device: Placement::order
  std::vector<double> peak_bytes;        ///< per device: BTSearch's peak of its order
  std::vector<double> lower_bound;       ///< per device: BTSearch's proven lower bound (the peak when optimal)
};
MemoryOrders memory_orders(const CostTable& table, const Placement& placement,
                           const std::vector<std::vector<OpId>>& current, const std::vector<char>& search,
                           const SearchOptions& options, OrderCache* cache = nullptr);

/// Sum over devices of (peak - capacity) / capacity where the peak exceeds the capacity (1 per device of
/// capacity 0); 0 when every device fits.
double relative_overflow(const CostTable& table, const std::vector<double>& peak);

/// A placement's schedule, with memory-optimal orders where they make it fit (memory_fit.cpp): simulated in its
/// own order first; when a device overflows, the overflowing devices run BTSearch's order (then every device,
/// if that is not enough), and `placement.order` takes the merged orders only when the plan then fits.
struct MemoryFit {
  Schedule schedule;          ///< of `placement` as it is on return
  bool ordered = false;       ///< placement.order now holds the BTSearch orders: the plan fits only with them
  double overflow = 0;        ///< relative_overflow of the best schedule tried (0 = fits)
  double bound_overflow = 0;  ///< relative_overflow with BTSearch's lower bounds on the searched devices
};
MemoryFit fit_with_memory_orders(const CostTable& table, Placement& placement, const SimOptions& sim,
                                 const SearchOptions& search, OrderCache* cache = nullptr);

/// file, dfs, bfs, greedy and btsearch orders of the same operators, in that order.
std::vector<OrderResult> compare_orders(const CostTable& table, const std::vector<OpId>& ops = {},
                                        const SearchOptions& options = {});

}  // namespace moirai
