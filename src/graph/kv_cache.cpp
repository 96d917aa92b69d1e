// KV caches of decode graphs: found from the graph's structure (an input appended to and returned as an output),
// not from names, so graphs of any exporter qualify; names only give the layer index for reports.
#include <regex>

#include "moirai/graph.h"

namespace moirai {

int layer_index(const std::string& name) {
  // Module names of the common exporters: "layers.12" (LLaMA, Mistral), "h.3" (GPT-2), "blocks.5", "layer.7"
  // (BERT); cache tensors "past_key.12", "past_key_values.12.key".
  static const std::regex module(R"((?:^|[/._])(?:layers|layer|h|blocks|block)[._](\d+)(?:[/._]|$))");
  static const std::regex cache(R"(^past[a-z_]*\.(\d+)(?:\.|$))");
  std::smatch m;
  if (std::regex_search(name, m, module) || std::regex_search(name, m, cache)) return std::stoi(m[1].str());
  return -1;
}

std::vector<KvCache> find_kv_caches(const Graph& graph) {
  std::vector<KvCache> out;
  for (TensorId id = 0; id < graph.num_tensors(); ++id) {
    const Tensor& past = graph.tensor(id);
    if (past.kind != TensorKind::Input) continue;
    bool found = false;
    for (OpId reader : past.consumers) for (TensorId o : graph.op(reader).outputs) {
      if (found) break;
      const Tensor& present = graph.tensor(o);
      if (!present.graph_output || present.dtype != past.dtype || present.shape.size() != past.shape.size()) continue;
      int longer = -1, differ = 0;
      for (size_t a = 0; a < past.shape.size(); ++a)
        if (present.shape[a] != past.shape[a]) {
          ++differ;
          if (present.shape[a] > past.shape[a]) longer = static_cast<int>(a);
        }
      if (differ != 1 || longer < 0) continue;
      out.push_back({id, o, reader, longer, layer_index(past.name), past.bytes()});
      found = true;
    }
  }
  return out;
}

}  // namespace moirai
