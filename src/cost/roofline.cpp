// Analytic roofline cost model (Williams, Waterman, Patterson, "Roofline: an insightful visual performance model
// for multicore architectures", CACM 52(4), 2009): an operator takes
//   launch overhead + max(FLOPs / (peak x eff_compute), bytes moved / (memory bandwidth x eff_memory)).
// The efficiencies are the typical fractions of vendor peak that tuned libraries reach, per operator class and
// device kind; they come from published measurements (cited next to each constant), not from fitting a result.
#include <algorithm>
#include <cmath>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "moirai/cost.h"

namespace moirai {
namespace {

enum class OpClass { Dense, Elementwise, DataMovement };

struct Efficiency {
  double compute;
  double memory;
};

// Dense (Conv, MatMul, Gemm, attention GEMMs): large cuBLAS/cuDNN GEMMs and convolutions reach about 70-80% of
// peak on A100/V100-class GPUs (NVIDIA Deep Learning Performance Guide, GEMM chapter); we take 70% because
// inference layers are smaller than the guide's largest GEMMs. oneDNN/MKL SGEMM on CPUs reaches about 60% of
// peak on inference-sized matrices (oneDNN benchmark reports). Memory side of every class on GPUs:
// BabelStream/STREAM triad reaches about 85% of the HBM/GDDR peak (Deakin et al., "Evaluating attainable memory
// bandwidth of parallel programming models via BabelStream", 2018); STREAM on server/desktop CPUs reaches about
// 70% of the theoretical DRAM bandwidth (McCalpin's STREAM results). Elementwise and normalisation kernels are
// bandwidth bound, so their compute efficiency only matters for unusually heavy ones (Softmax, GELU): 25% is
// our judgment for non-FMA arithmetic (transcendentals run on special-function units) and seldom binds. Data
// movement (Transpose, Gather, Concat, Slice...) uses strided access: the simple transposes in NVIDIA's "An
// Efficient Matrix Transpose in CUDA C/C++" reach a third to a half of copy bandwidth, so we take half of the
// streaming figure.
Efficiency efficiency(OpClass cls, bool cpu) {
  switch (cls) {
    case OpClass::Dense:
      return cpu ? Efficiency{0.60, 0.70} : Efficiency{0.70, 0.85};
    case OpClass::Elementwise:
      return cpu ? Efficiency{0.25, 0.70} : Efficiency{0.25, 0.85};
    case OpClass::DataMovement:
      return cpu ? Efficiency{0.25, 0.35} : Efficiency{0.25, 0.45};
  }
  return {1.0, 1.0};
}

OpClass classify(const Operator& op) {
  static const std::set<std::string_view> dense = {"Conv", "ConvTranspose", "MatMul", "Gemm", "MatMulInteger",
                                                   "QLinearConv", "QLinearMatMul", "Einsum", "Attention"};
  static const std::set<std::string_view> movement = {
      "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather",
      "GatherElements", "GatherND", "Scatter", "ScatterND", "ScatterElements", "Expand", "Tile", "Pad",
      "Identity", "Cast", "Shape", "DepthToSpace", "SpaceToDepth", "Resize", "Upsample"};
  if (dense.count(op.type)) return OpClass::Dense;
  // A fused group is anchored by its heaviest member (TVM FuseOps fuses elementwise work into a dense op):
  // treat it as dense when it does real arithmetic; a purely elementwise group stays bandwidth bound anyway.
  if (op.type == "Fused") return op.known && op.flops > 0 ? OpClass::Dense : OpClass::Elementwise;
  if (movement.count(op.type)) return OpClass::DataMovement;
  return OpClass::Elementwise;
}

bool is_float(DType t) { return t == DType::Float32 || t == DType::Float16 || t == DType::BFloat16 || t == DType::Float64; }

// "Mostly FP16": more floating-point bytes (weights and activations) in 16-bit than in wider types.
bool mostly_fp16(const Graph& graph) {
  double half = 0, wide = 0;
  for (const auto& t : graph.tensors()) {
    if (!is_float(t.dtype)) continue;
    const double b = static_cast<double>(t.bytes());
    (t.dtype == DType::Float16 || t.dtype == DType::BFloat16 ? half : wide) += b;
  }
  return half > wide;
}

}  // namespace

Expected<CostTable> build_cost_table(const Graph& graph, const Cluster& cluster, const CostOptions& options) {
  const int k = cluster.size();
  if (k == 0) return Error{"cluster '" + cluster.name + "': no devices"};
  for (const auto& d : cluster.devices)
    if (d.peak_gflops <= 0 || d.mem_bandwidth_gbps <= 0)
      return Error{fmt::format(
          "cluster '{}': device '{}' has no peak_gflops/mem_bandwidth_gbps, so it cannot cost a model analytically "
          "(use a profiled instance or a cluster with device figures)",
          cluster.name, d.name)};
  const bool fp16 = options.fp16 || mostly_fp16(graph);

  CostTable t;
  t.name = graph.name;
  t.cluster = cluster.name;
  for (const auto& d : cluster.devices) {
    t.device_names.push_back(d.name);
    t.capacity.push_back(d.usable_bytes());
    t.reserved.push_back(d.reserved_bytes);
    t.device_kinds.push_back(d.kind);
    t.stage_overhead_ms.push_back(d.stage_overhead_us / 1000.0);
  }
  const int n = graph.num_ops();
  // KV caches: resident state of the operator that appends to them, written in place. The append writes only
  // the new tokens; a bare Concat does not even read the old ones (a fused group with the attention does).
  const std::vector<KvCache> caches = find_kv_caches(graph);
  std::vector<double> state(static_cast<size_t>(n), 0.0), skip_read(state), skip_write(state);
  for (const KvCache& c : caches) {
    const auto i = static_cast<size_t>(c.op);
    state[i] += static_cast<double>(c.bytes);
    skip_write[i] += static_cast<double>(c.bytes);
    if (graph.op(c.op).type == "Concat") skip_read[i] += static_cast<double>(c.bytes);
  }
  t.time_ms.reserve(static_cast<size_t>(n * k));
  for (const auto& op : graph.ops()) {
    t.op_names.push_back(op.name);
    t.op_types.push_back(op.type);
    t.op_origin.push_back(op.origin.empty() ? std::vector<std::string>{op.name} : op.origin);
    const auto i = t.param_bytes.size();
    t.param_bytes.push_back(static_cast<double>(op.param_bytes) + state[i]);
    t.state_bytes.push_back(state[i]);
    t.flops.push_back(op.flops);
    const OpClass cls = classify(op);
    for (const auto& d : cluster.devices) {
      const Efficiency eff = efficiency(cls, d.kind == "cpu");
      const double peak = fp16 && d.peak_gflops_fp16 > 0 ? d.peak_gflops_fp16 : d.peak_gflops;
      const double compute_ms = op.flops / (peak * 1e9 * eff.compute) * 1e3;
      const double moved = op.bytes_read - skip_read[i] + op.bytes_written - skip_write[i];
      const double memory_ms = moved / (d.mem_bandwidth_gbps * 1e9 * eff.memory) * 1e3;
      t.time_ms.push_back(d.launch_us / 1e3 + std::max(compute_ms, memory_ms));
    }
  }
  // One data item per activation with a producer. Graph inputs have no producer: their bytes are taken as
  // already present on every device (fed by the user), so they cost no transfer. Parameters are resident
  // memory of their operators (param_bytes), not data items.
  for (TensorId id = 0; id < graph.num_tensors(); ++id) {
    const Tensor& tensor = graph.tensor(id);
    if (tensor.producer == kNone) continue;
    DataItem item;
    item.name = tensor.name;
    item.producer = tensor.producer;
    item.consumers = tensor.consumers;
    std::sort(item.consumers.begin(), item.consumers.end());
    item.consumers.erase(std::unique(item.consumers.begin(), item.consumers.end()), item.consumers.end());
    item.bytes = static_cast<double>(tensor.bytes());
    for (const KvCache& c : caches)
      if (c.present == id) item.in_place_bytes = static_cast<double>(c.bytes);
    item.transfer_ms.assign(static_cast<size_t>(k * k), 0.0);
    for (int s = 0; s < k; ++s)
      for (int d = 0; d < k; ++d) item.transfer_ms[static_cast<size_t>(s * k + d)] = cluster.transfer_ms(s, d, item.bytes);
    t.data.push_back(std::move(item));
  }
  MOIRAI_TRY(t.finalize());
  return t;
}

}  // namespace moirai
