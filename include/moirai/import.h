// ONNX import: reads a model (with weights or weight-stripped), runs ONNX shape inference, fixes dynamic
// dimensions, folds shape-only subgraphs and annotates FLOPs and bytes. ONNX/protobuf types stay in src/onnx.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "moirai/error.h"
#include "moirai/graph.h"

namespace moirai {

struct ImportOptions {
  /// Values for named dynamic dimensions (--dim NAME=VALUE). Unnamed dynamic batch dims default to 1.
  std::map<std::string, int64_t> dims;
  /// false: a value for a dimension the model lacks is an error; true: it is ignored (one --context for every
  /// model of a bench, only decode graphs having that dimension).
  bool optional_dims = false;
};

/// Imports an ONNX file into the graph IR. Every error names the file and the problem.
Expected<Graph> import_onnx(const std::string& path, const ImportOptions& options = {});

}  // namespace moirai
