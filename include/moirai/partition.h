// Intra-operator partitioning: one operator split across several devices, each part computing a slice of its
// output, and GenEFlow, the genetic search over how to split (after MemoriaNova's GenEFlow).
//
// A split problem is solved by *expansion*: a split operator becomes K part-operators, each pinned to its
// device, and its tensors become pieces (data items) that carry exactly the bytes each consumer part needs
// (scatter, broadcast, gather, or halo rows between neighbouring parts). The expanded CostTable goes through the
// unchanged simulate() and validate(), so split plans are judged by the same clock, link and port model, and
// memory accounting as every other plan.
//
// Which splits are legal (decided from the coarse graph; a fused operator splits along its anchor's axis only
// when every member can compute just the slice its readers need, and a row split reads the halo of the whole
// chain of windows: see Operator::members):
//
//   operator type                         | Channels (output axis)        | Rows (output axis 2)   | Tokens (axis -2)
//   --------------------------------------+-------------------------------+------------------------+-----------------
//   Conv, group 1                         | yes, axis 1; weights split    | yes, input rows + halo | no
//   Conv, depthwise (group = C_in = C_out)| yes, axis 1; input ch. split  | yes, input rows + halo | no
//   Conv, other groups                    | no                            | yes, input rows + halo | no
//   MaxPool, AveragePool                  | yes, axis 1                   | yes, input rows + halo | no
//   elementwise (moirai/op_traits.h)      | yes, axis 1 (rank-4 output)   | yes (rank-4 output)    | yes (rank >= 2)
//   MatMul, Gemm (no transA)              | yes, last axis (B columns)    | no                     | yes (rows of A)
//   Softmax (last axis), LayerNormalization| no                           | no                     | yes
//   ReduceMean (last axis, keepdims)      | no                            | no                     | yes
//   fused self-attention group            | no                            | no                     | yes (query rows;
//     (q, k, v -> MatMul -> Softmax ->    |   Heads: yes, whole heads: columns [h0, h1) x E/H of   |  k, v whole)
//      MatMul -> [B, S, E])               |   q, k, v and of the output                            |
//   anything else (Reshape, Concat, ...)  | no                            | no                     | no
//
// (docs/splits.md gives the same table with the transfers each split implies.)
// A dimension needs an extent of at least 2 and every output of the operator must have the same shape. Inside a
// fused group an elementwise member follows the group's axis (the bias and GELU after a MatMul split by columns).
// Channel splits divide the parameters (each device holds its share of the weights); row and token splits
// replicate them. Rows of a window operator (Conv, pooling) read the input rows
// [b*stride - pad_top, (e-1)*stride - pad_top + dilation*(kernel-1)] for output rows [b, e), clamped to the input.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "moirai/cluster.h"
#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/graph.h"
#include "moirai/placement.h"
#include "moirai/placer.h"
#include "moirai/simulate.h"

namespace moirai {

/// How an operator's output is divided between devices.
enum class SplitDim : uint8_t {
  None,      ///< not split
  Channels,  ///< output channels (Conv axis 1) or output columns (MatMul/Gemm last axis)
  Rows,      ///< spatial rows of an NCHW output (axis 2); window operators read a halo of input rows
  Tokens,    ///< rows of a MatMul / attention / token-wise operator (axis -2 of the output)
  Heads,     ///< attention heads of a fused self-attention group (blocks of E/H columns of its [B, S, E] output)
};

/// "none", "channels", "rows", "tokens", "heads".
const char* split_dim_name(SplitDim dim);

/// The split dimensions legal for one operator of the (coarse) graph, per the table above; never includes None.
std::vector<SplitDim> legal_splits(const Graph& graph, OpId op);

/// A split of one operator: the devices and the proportion of the output each computes (shares sum to 1).
struct Split {
  SplitDim dim = SplitDim::None;
  std::vector<DeviceId> devices;
  std::vector<double> shares;  ///< same length as devices, >= 0
};

/// A part of a tensor: the whole (axis = -1) or the index range [begin, end) along one axis.
struct Region {
  int axis = -1;
  int64_t begin = 0;
  int64_t end = 0;
  bool whole() const { return axis < 0; }
  bool operator==(const Region&) const = default;
};

/// One part of a split operator, with the integer ranges it computes and reads.
struct PartSpec {
  DeviceId device = 0;
  double share = 0;                 ///< (end - begin) / extent of the output range
  Region output;                    ///< the slice of every output it writes
  std::vector<Region> inputs;       ///< per operator input (graph order): the slice it reads
  double param_fraction = 1;        ///< fraction of the operator's parameters it holds (share for channel splits)
  double byte_fraction = 1;         ///< fraction of the operator's input + output bytes it touches (halo included)
};

/// Divides the operator's output along split.dim in proportion to split.shares (cumulative rounding, so the
/// ranges tile [0, extent) exactly once, in device-list order) and derives each part's input slices. Parts that
/// round to nothing are dropped. Errors name the operator when the split is illegal or malformed.
Expected<std::vector<PartSpec>> plan_parts(const Graph& graph, OpId op, const Split& split);

/// Input rows [first, last) a window operator reads for output rows [out_begin, out_end), clamped to
/// [0, in_rows): first = out_begin*stride - pad_begin, last = (out_end-1)*stride - pad_begin + dilation*(kernel-1) + 1.
std::pair<int64_t, int64_t> window_input_rows(int64_t out_begin, int64_t out_end, int64_t kernel, int64_t stride,
                                              int64_t pad_begin, int64_t dilation, int64_t in_rows);

/// A problem with some operators split: the expanded table (part-operators and tensor pieces), a placement that
/// pins every part to its device, and the maps back to the original operators. simulate()/validate() apply.
struct PartitionedProblem {
  CostTable table;
  Placement placement;
  std::vector<OpId> origin;                 ///< expanded op -> original op
  std::vector<std::vector<OpId>> parts_of;  ///< original op -> its expanded ops (one when unsplit)
  std::vector<std::vector<PartSpec>> specs; ///< original op -> its parts (empty when unsplit)
};

/// Expands `splits` (one per original operator; dim None = keep whole on base.device) into a PartitionedProblem.
/// `graph` is the graph the table was built from (same operators, data items named after its tensors); the
/// link model (latency + bytes / bandwidth per device pair) is read from `cluster` when given, else fitted to
/// the table's own transfer times. Part times follow the roofline the table was built with: launch + (time -
/// launch) x the binding side's fraction: with a cluster, max(share, byte fraction x M/C) for compute-bound
/// operators (C = FLOPs / peak, M = bytes / bandwidth on that device) and max(byte fraction, share x C/M) for
/// memory-bound ones; without a cluster, max(share, byte fraction).
Expected<PartitionedProblem> expand_splits(const CostTable& table, const Graph& graph, const Placement& base,
                                           const std::vector<Split>& splits, const Cluster* cluster = nullptr);

/// The split relaxation (bound.cpp): a lower bound on the makespan of every plan that may split operators, with
/// each operator divisible across devices in any proportions, free transfers and unbounded memory: the
/// unrelated-machines load LP, evaluated through its dual (any device weighting gives a bound; the best found
/// by mirror ascent is returned). Whole-operator bounds (the MILP's) do not hold for split plans: use this one.
double split_relaxation_bound(const CostTable& table);

/// The result of GenEFlow (or of any fixed set of splits).
struct PartitionResult {
  std::vector<Split> splits;    ///< per original operator (dim None = whole)
  PartitionedProblem expanded;  ///< the expanded problem; `schedule` is its simulation
  Schedule schedule;            ///< simulate(expanded.table, expanded.placement); passes validate()
  double makespan_ms = 0;       ///< schedule.makespan_ms
  double seed_makespan_ms = 0;  ///< the seed plan's makespan (whole operators)
  int split_ops = 0;            ///< operators split in the result
  int genes = 0;                ///< operators the search considered splitting
  int generations = 0;          ///< generations run
  int evaluations = 0;          ///< simulations run
  bool memory_ordered = false;  ///< the plan fits only with BTSearch's per-device orders (expanded.placement.order)
  long long order_searches = 0; ///< BTSearch runs during the search (cache misses)
  long long order_cache_hits = 0;
  double search_time_s = 0;

  /// The plan in the original table's terms, for plan.json and the Gantt: `view_table` is the original table
  /// whose data items are the expanded pieces (producers and consumers mapped back to original operators),
  /// `view_placement` puts each operator on the device of its largest part, `view_schedule` spans each split
  /// operator from its first part's start to its last part's end (transfers, busy time, memory and makespan
  /// are the expanded schedule's), and `parts` lists each split operator's parts (empty when whole).
  /// Validate with `expanded`, not with the view: a split operator's span is not its table time.
  CostTable view_table;
  Placement view_placement;
  Schedule view_schedule;
  std::vector<std::vector<OpPart>> parts;
};

/// Simulates a fixed set of splits and fills a PartitionResult (schedule and view); no search. Devices run their
/// operators by the list policy, or, with `start_ms` (start time per expanded operator name: "op" for a whole
/// operator, "op#k" for part k, as a plan file gives them), in the order of those times when that order respects
/// precedence (otherwise by the list policy); an operator without a start time is an error naming it.
Expected<PartitionResult> evaluate_splits(const CostTable& table, const Graph& graph, const Placement& base,
                                          const std::vector<Split>& splits, const SimOptions& sim = {},
                                          const Cluster* cluster = nullptr,
                                          const std::map<std::string, double>* start_ms = nullptr);

/// GenEFlow: genetic search over per-operator splits (method, device set, proportions), seeded with `seed`
/// (a whole-operator plan, typically the best other method's), so the result is never slower than the seed.
/// Fitness = makespan x (1 + 10 x relative memory overflow). Uses options.seed, generations, population,
/// time_limit_s, sim and progress. Deterministic per options.seed. Only operators whose time is a noticeable
/// share of the seed's makespan (up to 64 of them) get genes. With a null graph or one device, returns the seed.
Expected<PartitionResult> geneflow(const CostTable& table, const Graph* coarse_graph, const Placement& seed,
                                   const PlaceOptions& options, const Cluster* cluster = nullptr);

}  // namespace moirai
