// Layer chains: a decoder (or any stack of repeated blocks) seen as a chain of blocks: a prologue (the token
// embedding), the layers in order, an epilogue (final norm, LM head). Layer-wise placers (the practical splits of
// accelerate, llama.cpp and exo, and the exact layer DP) place whole blocks; a pipeline-stage DP can use the same
// chain. Blocks come from the layer index in the operators' original node names ("layers.12/wq"); an operator with
// no index belongs to the prologue when no layered operator precedes it, else to the epilogue.
#pragma once

#include <string>
#include <vector>

#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/placement.h"

namespace moirai::place {

struct Block {
  std::string name;         ///< "embedding", "layers.0" ... "layers.L-1", "head"
  int layer = -1;           ///< the layer index, -1 for the prologue and the epilogue
  std::vector<OpId> ops;    ///< in topological order
  double param_bytes = 0;   ///< resident: parameters and state (KV cache) of its operators
  double state_bytes = 0;   ///< of which KV cache
  double persist_bytes = 0; ///< graph outputs it produces that nobody reads (held to the end), in-place part excluded
  double act_bytes = 0;     ///< every other activation it produces: an upper bound of what it holds live alone
  std::vector<double> time_ms;  ///< per device, the sum of its operators' times (a device runs one at a time)
};

struct LayerChain {
  std::vector<Block> blocks;  ///< prologue (may be empty of operators), layers, epilogue (may be empty)
  std::vector<int> block_of;  ///< per operator
  /// cut[b]: data items produced in blocks <= b and read in blocks > b (what crosses the boundary after b).
  std::vector<std::vector<int>> cut;
  /// true when every item crossing a boundary is produced in the block just before it: then a transfer at a
  /// boundary always leaves the previous block's device, and per-block sums are the chain's exact time.
  bool adjacent_only = true;
  int num_layers() const;
  /// Milliseconds to carry boundary b's items from device a to device c (0 when a == c).
  double boundary_ms(const CostTable& t, int b, DeviceId a, DeviceId c) const;
};

/// The chain of `t`, or an error when the operators carry no layer index or an edge runs from a later block to an
/// earlier one (the graph is not a chain of layers).
Expected<LayerChain> find_layer_chain(const CostTable& t);

/// A placement that puts every operator of block b on device[b].
Placement place_blocks(const CostTable& t, const LayerChain& chain, const std::vector<DeviceId>& device);

/// Devices of a kind ("gpu", "cpu") in file order; empty when the table has no kinds (instances).
std::vector<DeviceId> devices_of_kind(const CostTable& t, const std::string& kind);

}  // namespace moirai::place
