// CostTable: the placement problem every placer and the simulator see. It is built from a graph and a
// cluster (analytic roofline), refined by a measured profile, or read directly from a profiled instance.
// Placers never look at the model file or the cluster file, only at this table.
#pragma once

#include <string>
#include <vector>

#include "moirai/cluster.h"
#include "moirai/error.h"
#include "moirai/graph.h"

namespace moirai {

/// One piece of data that flows between operators: an activation tensor (or, for instances, one edge).
/// Sent at most once to each remote device; all consumers on that device share the copy.
struct DataItem {
  std::string name;
  OpId producer = kNone;        ///< always a valid operator
  std::vector<OpId> consumers;  ///< ascending, may be empty (graph output)
  double bytes = 0;             ///< size of the tensor (0 when unknown, as in instances)
  std::vector<double> transfer_ms;  ///< num_devices x num_devices, [src * n + dst]; diagonal 0
  /// Of `bytes`, the part written into a buffer already resident on the producer's device (a KV cache's
  /// `present` is the cache with new tokens appended in place): it adds no memory there. A copy sent to another
  /// device still holds all of `bytes`.
  double in_place_bytes = 0;
};

struct CostTable {
  std::string name;     ///< model or instance name
  std::string cluster;  ///< cluster name
  bool per_edge_data = false;  ///< true for instances: every edge is its own DataItem

  // Devices.
  std::vector<std::string> device_names;
  std::vector<double> capacity;  ///< usable memory per device: its memory minus its reserve (bytes; the
                                 ///< instance's unit for instances). Every placer, the simulator and the validator
                                 ///< see only this figure, so the reserve is respected everywhere.
  std::vector<std::string> device_kinds;  ///< "gpu", "cpu"... per device (empty for instances)
  std::vector<double> reserved;  ///< per device, memory held back on top of `capacity` (empty for instances)
  std::string memory_unit = "bytes";  ///< unit of capacity, param_bytes and DataItem::bytes ("units" for instances)
  /// Per device: fixed cost of one stage (one runtime call, see moirai/stages.h), ms. All 0 (the default, and
  /// what finalize() fills in when empty) = operators are scheduled one by one; any > 0 = the simulator runs
  /// stages as the executor does (see moirai/simulate.h).
  std::vector<double> stage_overhead_ms;

  // Operators, indexed by OpId.
  std::vector<std::string> op_names;
  std::vector<std::string> op_types;
  std::vector<std::vector<std::string>> op_origin;  ///< original ONNX node names
  std::vector<double> time_ms;      ///< num_ops x num_devices, [op * n + device]
  std::vector<double> param_bytes;  ///< resident memory of an operator: its parameters and its state
  std::vector<double> state_bytes;  ///< of param_bytes, the KV cache the operator keeps for the run (decode graphs)
  std::vector<double> flops;        ///< for reports and heuristics (0 for instances)

  // Data, indexed by data id.
  std::vector<DataItem> data;

  // Derived by finalize().
  std::vector<std::vector<int>> op_inputs;   ///< data ids an operator reads
  std::vector<std::vector<int>> op_outputs;  ///< data ids an operator produces
  std::vector<OpId> topo_order;              ///< topological order, ties by smallest id

  int num_ops() const { return static_cast<int>(op_names.size()); }
  int num_devices() const { return static_cast<int>(device_names.size()); }
  /// True when some device pays a per-stage overhead (the simulator then schedules stages, not operators).
  bool models_stages() const;
  double time(OpId op, DeviceId d) const { return time_ms[static_cast<size_t>(op) * static_cast<size_t>(num_devices()) + static_cast<size_t>(d)]; }
  double transfer(int data_id, DeviceId src, DeviceId dst) const {
    return data[static_cast<size_t>(data_id)].transfer_ms[static_cast<size_t>(src) * static_cast<size_t>(num_devices()) +
                                                    static_cast<size_t>(dst)];
  }
  /// Distinct predecessor / successor operators, ascending.
  std::vector<OpId> predecessors(OpId op) const;
  std::vector<OpId> successors(OpId op) const;

  /// Builds op_inputs, op_outputs and topo_order and checks sizes and acyclicity.
  Status finalize();

  /// A table with this one's name, cluster and devices and no operators: the start of a derived problem (a
  /// contraction, a partition).
  CostTable with_devices_only() const;

  /// "'NAME' has P bytes of parameters; capacities: dev0 C0, dev1 C1, ..." for "does not fit" errors.
  std::string memory_summary() const;
};

/// Efficiency factors of the roofline model (see src/cost/roofline.cpp for their sources).
struct CostOptions {
  bool fp16 = false;  ///< use peak_gflops_fp16 where a device has it (LLM graphs in FP16 set this automatically)
};

/// Analytic roofline cost: time = launch + max(flops / (peak x eff), bytes / (bandwidth x eff)).
Expected<CostTable> build_cost_table(const Graph& graph, const Cluster& cluster, const CostOptions& options = {});

/// Overrides operator times with a measured profile (JSON: {"ops": {OP_NAME: {DEVICE_NAME: ms}}}; version 2
/// adds "threads" and "stage_overhead_ms": {DEVICE_NAME: ms}, and its operator times are then net of that
/// overhead, which is applied to the table too). Unknown operator or device names are an error and leave the
/// table unchanged.
Status apply_profile(CostTable& table, const std::string& path);

/// Reads a profiled instance (shared/instances format) as a cost table.
Expected<CostTable> load_instance(const std::string& path);

}  // namespace moirai
