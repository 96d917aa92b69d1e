// Test support: tiny ONNX models built with the ONNX protobuf API (bad files for the importer, small decoders).
#pragma once

#include <cctype>
#include <fstream>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"

namespace moirai::testing {

struct ModelBuilder {
  onnx::ModelProto m;
  onnx::GraphProto* g;
  ModelBuilder() {
    m.set_ir_version(8);
    auto* o = m.add_opset_import();
    o->set_domain("");
    o->set_version(13);
    g = m.mutable_graph();
    g->set_name("test");
  }
  onnx::ValueInfoProto* value(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list, const std::string& name,
                              const std::vector<std::string>& dims, int type = onnx::TensorProto_DataType_FLOAT) {
    auto* v = list->Add();
    v->set_name(name);
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(type);
    auto* shape = tt->mutable_shape();
    for (const auto& d : dims) {
      auto* dim = shape->add_dim();
      if (d.empty()) continue;  // unknown, unnamed
      if (std::isdigit(static_cast<unsigned char>(d[0])) || d[0] == '-') dim->set_dim_value(std::stoll(d));
      else dim->set_dim_param(d);
    }
    return v;
  }
  void input(const std::string& name, const std::vector<std::string>& dims) { value(g->mutable_input(), name, dims); }
  void output(const std::string& name) { value(g->mutable_output(), name, {}); g->mutable_output()->rbegin()->mutable_type()->mutable_tensor_type()->clear_shape(); }
  void weight(const std::string& name, const std::vector<int64_t>& dims) {  // stripped: dims only
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto_DataType_FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
    auto* e = t->add_external_data();
    e->set_key("location");
    e->set_value("weights.absent");
  }
  void ints(const std::string& name, const std::vector<int64_t>& values) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto_DataType_INT64);
    t->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values) t->add_int64_data(v);
  }
  onnx::NodeProto* node(const std::string& type, const std::vector<std::string>& in,
                        const std::vector<std::string>& out, const std::string& name = "") {
    auto* n = g->add_node();
    n->set_op_type(type);
    if (!name.empty()) n->set_name(name);
    for (const auto& s : in) n->add_input(s);
    for (const auto& s : out) n->add_output(s);
    return n;
  }
  static void attr(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v, bool scalar = false) {
    auto* a = n->add_attribute();
    a->set_name(name);
    if (scalar) {
      a->set_type(onnx::AttributeProto_AttributeType_INT);
      a->set_i(v[0]);
    } else {
      a->set_type(onnx::AttributeProto_AttributeType_INTS);
      for (int64_t x : v) a->add_ints(x);
    }
  }
  /// Writes the model to `path` and returns the path.
  std::string save_as(const std::string& path) const {
    std::ofstream(path, std::ios::binary) << m.SerializeAsString();
    return path;
  }
};


}  // namespace moirai::testing
