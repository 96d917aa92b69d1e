// The Moirai MILP formulation (Zhang et al., "Moirai: Towards Optimal Placement for Distributed Inference on
// Heterogeneous Devices", 2023, section 4) built from a CostTable into a solver-neutral MilpModel, plus the
// MILP's own schedule model (the simulator's: one transfer per data item and destination device) used for warm
// starts and LNS.
// Departures from the paper's reference code: order binaries only for pairs not ordered by reachability, one
// binary per unordered pair, big-M = an upper bound on the makespan (from the warm start), any number of sources
// and sinks, an activation reserve per device in the memory rows, a transportation-style linearisation of
// u[q,k',k''] (tighter than u >= x + x - 1), valid lower-bound rows (device and port loads, precedence loads:
// T >= F_i + work of i's descendants on k, S_i >= work of i's ancestors on k), and symmetry breaking for
// identical devices. Transfers as the simulator sends them: the edges of one data item whose consumers share a
// device are tied to one interval and never exclude each other on a port; port loads charge each item once per
// destination, so the model's objective is the simulated makespan of its plan.
#pragma once

#include <cmath>
#include <optional>
#include <vector>

#include "moirai/cost.h"
#include "milp_model.h"

namespace moirai {

/// One MILP edge: a DataItem with several consumers is several edges; those whose consumers share a device carry
/// one transfer (transfer_groups).
struct MilpEdge {
  int data = 0;
  OpId from = 0;
  OpId to = 0;
};

/// All edges of a table, by data id then consumer (deterministic).
std::vector<MilpEdge> milp_edges(const CostTable& table);

/// A complete schedule in the MILP's model: per op device and times, per edge transfer times.
struct MilpPlan {
  std::vector<DeviceId> device;
  std::vector<double> start, finish;            ///< per operator
  std::vector<double> comm_start, comm_finish;  ///< per edge (equal for the edges of one transfer)
  double makespan = 0;
};

/// Per edge, its transfer: edges of one data item (contiguous in `edges`, as milp_edges lists them) whose
/// consumers are on one device share an index; indices are 0, 1, ... in order of first edge.
std::vector<int> transfer_groups(const std::vector<MilpEdge>& edges, const std::vector<DeviceId>& device);

/// Earliest (semi-active) schedule in the MILP's model that keeps the device orders given by op_key and, with
/// contention, the port orders given by edge_key (ties by topological position). nullopt when the orders
/// contradict the precedences (a cycle).
std::optional<MilpPlan> evaluate_milp_plan(const CostTable& table, const std::vector<MilpEdge>& edges,
                                           const std::vector<DeviceId>& device, const std::vector<double>& op_key,
                                           const std::vector<double>& edge_key, bool contention);

/// A solver's start time as an order key: rounded, so that float noise cannot reorder ties.
inline double rounded_key(double v) { return std::round(v * 1e7) / 1e7; }

/// evaluate_milp_plan with a solver's start times as the order keys (rounded).
std::optional<MilpPlan> tighten(const CostTable& table, const std::vector<MilpEdge>& edges,
                                const std::vector<DeviceId>& device, const std::vector<double>& op_start,
                                const std::vector<double>& edge_start, bool contention);

/// Iterated local search from `start` in the MILP's schedule model (device and position moves, random kicks),
/// keeping the memory reserve. Never worse than `start`; deterministic for a seed unless `seconds` cuts it short.
MilpPlan improve_milp_plan(const CostTable& table, const std::vector<MilpEdge>& edges, const MilpPlan& start,
                           bool contention, double seconds, uint64_t seed);

/// Per operator: bytes of the data it reads and writes (the activation working set while it runs).
std::vector<double> working_sets(const CostTable& table);
/// True when the plan's parameters plus the largest working set per device fit every capacity.
bool fits_memory_reserve(const CostTable& table, const std::vector<DeviceId>& device);

/// Groups of identical devices (same operator times, capacity and transfer times, symmetric), each ascending,
/// only groups of two or more.
std::vector<std::vector<DeviceId>> identical_device_groups(const CostTable& table);
/// Renames devices inside each identical group so that they appear in the order of their first operator in
/// topological order (what the symmetry-breaking rows require). Does not change the makespan.
std::vector<DeviceId> canonical_devices(const CostTable& table, const std::vector<DeviceId>& device);

/// The longest path with every operator at its fastest device (that holds its parameters), transfers free.
double critical_path_bound(const CostTable& table);
/// Valid lower bounds on any makespan: critical path at fastest times, fastest work / devices.
double valid_lower_bound(const CostTable& table);

struct FormulationOptions {
  bool contention = true;
  double upper_bound = 0;  ///< big-M and T's upper bound; must be >= the warm start's makespan
  /// LNS: when set, only operators with free_op[i] choose a device; the others keep incumbent->device. Pairs
  /// with an operator outside `near` keep the incumbent's relative order (no binary).
  const MilpPlan* incumbent = nullptr;
  std::vector<char> free_op;
  std::vector<char> near;
  bool symmetry_breaking = true;
  /// Precedence-load rows (exact model only): every descendant of i that shares a device (or a port) with
  /// others runs after F_i on that resource, every ancestor before S_i. Valid, and much tighter than big-M.
  bool precedence_loads = true;
  /// Make T an integer column when every operator and transfer time is integral (then so is some optimum).
  bool integral_makespan = true;
  /// The assignment relaxation (a lower-bound model): no order binaries, so operators and transfers may overlap
  /// on a device or port; loads, precedences with transfer times and memory stay. Ports are charged per tensor
  /// and destination as the simulator sends them, and working sets only where an operator takes time, so its
  /// optimum is at most the simulated makespan of every plan that fits memory.
  bool relaxation = false;
};

struct Formulation {
  MilpModel model;
  std::vector<MilpEdge> edges;
  int num_devices = 0;
  std::vector<int> x;      ///< [op * K + k], -1 when op cannot be on k
  std::vector<int> start, finish;
  std::vector<int> comm_start, comm_finish, cross;  ///< per edge
  std::vector<int> u;      ///< [edge * K * K + k1 * K + k2], -1 when absent
  /// [(data * K + a) * K + b]: data item crosses from a to b (>= u of each of its edges); -1 when absent. Built
  /// only with contention and when some item has two consumers (else u charges the same).
  std::vector<int> y;
  std::vector<int> tie;    ///< [data * K + b]: start of the item's transfer to b, -1 when absent (one consumer)
  int makespan = -1;
  std::vector<int> reserve;          ///< per device, -1 when the capacity is unlimited
  std::vector<double> working_set;   ///< per operator
  struct Pair {
    int a = 0, b = 0;  ///< operators or edges
    int col = -1;      ///< binary: 1 = a before b
  };
  std::vector<Pair> op_pairs, comm_pairs;
  double lower_bound = 0;  ///< valid lower bound used as T's lower bound
  bool integral_makespan = false;  ///< T is an integer column (all durations integral)
};

/// Builds the model. Errors name an operator that fits no device.
Expected<Formulation> build_formulation(const CostTable& table, const FormulationOptions& options);

/// Full column assignment of a plan (x, times, u, z, order binaries consistent with its times, T).
std::vector<double> plan_to_values(const Formulation& f, const MilpPlan& plan);
/// Reads a plan back from column values.
MilpPlan values_to_plan(const Formulation& f, const std::vector<double>& values);

}  // namespace moirai
