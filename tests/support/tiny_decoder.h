// A tiny LLM decoder with a KV cache, built in memory and saved as ONNX (2 layers by default, 2 heads of 4, FP32,
// symbolic `context`): tests of the LLM figures (tests/pipeline) and of the device map (tests/run) place it.
#pragma once

#include <filesystem>
#include <string>

#include "support/onnx_builder.h"

namespace moirai::testing {

// h [1,2,1,4] -> embed -> per layer: q, k, v projections; k, v appended to past_key.L / past_value.L [1,2,context,4]
// (outputs present_key.L / present_value.L); softmax(q k^T) v; output projection; residual. Then lm_head -> logits.
// Saved as `dir`/tiny_decode.onnx; returns that path.
inline std::string tiny_decoder(const std::filesystem::path& dir, int layers = 2) {
  ModelBuilder b;
  b.input("h", {"1", "2", "1", "4"});
  b.weight("w_embed", {4, 4});
  b.node("MatMul", {"h", "w_embed"}, {"x0"}, "embed");
  std::string x = "x0";
  for (int l = 0; l < layers; ++l) {
    const std::string p = "layers." + std::to_string(l), L = std::to_string(l);
    for (const char* w : {"wq", "wk", "wv", "wo"}) b.weight(p + "." + w, {4, 4});
    b.node("MatMul", {x, p + ".wq"}, {p + "/q"}, p + "/wq");
    b.node("MatMul", {x, p + ".wk"}, {p + "/k"}, p + "/wk");
    b.node("MatMul", {x, p + ".wv"}, {p + "/v"}, p + "/wv");
    for (const std::string nm : {"key", "value"}) {
      b.input("past_" + nm + "." + L, {"1", "2", "context", "4"});
      auto* cat = b.node("Concat", {"past_" + nm + "." + L, p + (nm == "key" ? "/k" : "/v")}, {"present_" + nm + "." + L},
                         p + "/" + nm + "_cache");
      ModelBuilder::attr(cat, "axis", {2}, true);
      b.output("present_" + nm + "." + L);
    }
    auto* t = b.node("Transpose", {"present_key." + L}, {p + "/kT"}, p + "/k_T");
    ModelBuilder::attr(t, "perm", {0, 1, 3, 2});
    b.node("MatMul", {p + "/q", p + "/kT"}, {p + "/s"}, p + "/scores");
    auto* sm = b.node("Softmax", {p + "/s"}, {p + "/p"}, p + "/softmax");
    ModelBuilder::attr(sm, "axis", {-1}, true);
    b.node("MatMul", {p + "/p", "present_value." + L}, {p + "/a"}, p + "/attn");
    b.node("MatMul", {p + "/a", p + ".wo"}, {p + "/o"}, p + "/wo");
    b.node("Add", {x, p + "/o"}, {p + "/x"}, p + "/resid");
    x = p + "/x";
  }
  b.weight("w_out", {4, 16});
  b.node("MatMul", {x, "w_out"}, {"logits"}, "lm_head");
  b.output("logits");
  b.g->set_name("tiny_decode");
  return b.save_as((dir / "tiny_decode.onnx").string());
}

}  // namespace moirai::testing
