// The worker (tools/worker.mjs) over its gRPC contract (proto/worker.proto): bad input is answered with a clear
// error and the worker keeps serving; a stage runs once its inputs arrive and its output is held for Result.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <onnx/onnx_pb.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "run/run_support.h"
#include "worker.grpc.pb.h"

namespace moirai {
namespace {

namespace pb = moirai::worker;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    worker_ = std::make_unique<runtest::WorkerProcess>("cpu");
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    stub_ = pb::Worker::NewStub(grpc::CreateCustomChannel(worker_->address(), grpc::InsecureChannelCredentials(), args));
  }

  /// Loads squeezenet as stage "net": image float32 [1,3,224,224] -> logits [1,1000], kept for the coordinator.
  grpc::Status load(const std::string& model_bytes) {
    pb::LoadRequest req;
    req.set_device("cpu");
    pb::Stage* s = req.add_stages();
    s->set_name("net");
    s->set_model(model_bytes);
    pb::TensorSpec* in = s->add_inputs();
    in->set_name("image");
    in->set_dtype("float32");
    for (int64_t d : {1, 3, 224, 224}) in->add_shape(d);
    pb::TensorSpec* out = s->add_outputs();
    out->set_name("logits");
    out->set_dtype("float32");
    out->add_shape(1);
    out->add_shape(1000);
    pb::Route* r = s->add_routes();
    r->set_tensor("logits");
    r->set_coordinator(true);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    pb::LoadReply reply;
    return stub_->Load(&ctx, req, &reply);
  }

  grpc::Status push(uint64_t request, const std::string& stage, const std::string& name, std::vector<int64_t> shape,
                    size_t bytes, const std::string& dtype = "float32") {
    pb::PushRequest req;
    req.set_request(request);
    req.add_stages(stage);
    pb::Tensor* t = req.mutable_tensor();
    t->set_name(name);
    t->set_dtype(dtype);
    for (int64_t d : shape) t->add_shape(d);
    t->set_data(std::string(bytes, '\0'));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    pb::PushReply reply;
    return stub_->Push(&ctx, req, &reply);
  }

  bool alive() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    pb::PingReply reply;
    return stub_->Ping(&ctx, pb::PingRequest{}, &reply).ok();
  }

  std::unique_ptr<runtest::WorkerProcess> worker_;
  std::unique_ptr<pb::Worker::Stub> stub_;
};

constexpr size_t kImageBytes = 1 * 3 * 224 * 224 * 4;

TEST_F(WorkerTest, BadInputIsAnsweredAndTheWorkerKeepsServing) {
  // A model that does not load.
  grpc::Status st = load("not an onnx file");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("stage 'net': the model does not load"), std::string::npos) << st.error_message();
  ASSERT_TRUE(alive());
  ASSERT_TRUE(load(read_file(std::string(MOIRAI_SOURCE_DIR) + "/models/squeezenet1_1.weights.onnx")).ok());

  // Unknown stage, unknown input, mis-shaped, wrong element type, wrong byte count.
  st = push(1, "nope", "image", {1, 3, 224, 224}, kImageBytes);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "unknown stage 'nope' (this worker runs: net)");
  st = push(1, "net", "pixels", {1, 3, 224, 224}, kImageBytes);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "stage 'net' has no input 'pixels' (inputs: image)");
  st = push(1, "net", "image", {1, 3, 224}, kImageBytes / 224);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "stage 'net', tensor 'image': shape [1,3,224], expected [1,3,224,224]");
  st = push(1, "net", "image", {1, 3, 224, 224}, kImageBytes, "int64");
  EXPECT_EQ(st.error_message(), "stage 'net', tensor 'image': element type int64, expected float32");
  st = push(1, "net", "image", {1, 3, 224, 224}, 100);
  EXPECT_EQ(st.error_message(),
            "stage 'net', tensor 'image': 100 bytes of data, expected 602112 (150528 x float32)");
  ASSERT_TRUE(alive());

  // A good tensor runs the stage; Result streams its completion, then the held output.
  ASSERT_TRUE(push(1, "net", "image", {1, 3, 224, 224}, kImageBytes).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  pb::ResultRequest req;
  req.set_request(1);
  req.add_stages("net");
  auto reader = stub_->Result(&ctx, req);
  std::vector<pb::ResultEvent> events;
  for (pb::ResultEvent ev; reader->Read(&ev);) events.push_back(ev);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].stage(), "net");
  EXPECT_FALSE(events[0].last());
  ASSERT_TRUE(events[1].last());
  ASSERT_EQ(events[1].outputs_size(), 1);
  EXPECT_EQ(events[1].outputs(0).name(), "logits");
  EXPECT_EQ(events[1].outputs(0).data().size(), 4000u);

  // The trace records the stage run.
  grpc::ClientContext tctx;
  pb::TraceRequest treq;
  pb::TraceReply trace;
  ASSERT_TRUE(stub_->Trace(&tctx, treq, &trace).ok());
  ASSERT_EQ(trace.stages_size(), 1);
  EXPECT_EQ(trace.stages(0).stage(), "net");
  EXPECT_GT(trace.stages(0).end_ms(), trace.stages(0).start_ms());
}

TEST_F(WorkerTest, ResultForAnUnknownStageFails) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  pb::ResultRequest req;
  req.set_request(3);
  req.add_stages("ghost");
  auto reader = stub_->Result(&ctx, req);
  pb::ResultEvent ev;
  EXPECT_FALSE(reader->Read(&ev));
  const grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "unknown stage 'ghost' (this worker runs: none loaded)");
  EXPECT_TRUE(alive());
}

TEST_F(WorkerTest, ShutdownEndsTheProcess) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  pb::ShutdownReply reply;
  ASSERT_TRUE(stub_->Shutdown(&ctx, pb::ShutdownRequest{}, &reply).ok());
  int status = -1;
  for (int i = 0; i < 100 && ::waitpid(worker_->pid(), &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(WIFEXITED(status)) << "the worker is still running 5 s after Shutdown";
  worker_->forget();
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

/// An ONNX model without inputs: one Constant node whose value [1.5, -2] is the graph output "c".
std::string constant_model() {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(13);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("constant");
  onnx::NodeProto* node = g->add_node();
  node->set_op_type("Constant");
  node->add_output("c");
  onnx::AttributeProto* attr = node->add_attribute();
  attr->set_name("value");
  attr->set_type(onnx::AttributeProto::TENSOR);
  onnx::TensorProto* t = attr->mutable_t();
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(2);
  t->add_float_data(1.5f);
  t->add_float_data(-2.0f);
  onnx::ValueInfoProto* out = g->add_output();
  out->set_name("c");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  out->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(2);
  return model.SerializeAsString();
}

TEST_F(WorkerTest, AStageWithoutInputsRunsWhenItsRequestArrives) {
  // Such stages occur in exported plans (e.g. positional embeddings gathered from constants on another device).
  pb::LoadRequest load;
  pb::Stage* s = load.add_stages();
  s->set_name("const");
  s->set_model(constant_model());
  pb::TensorSpec* out = s->add_outputs();
  out->set_name("c");
  out->set_dtype("float32");
  out->add_shape(2);
  pb::Route* r = s->add_routes();
  r->set_tensor("c");
  r->set_coordinator(true);
  {
    grpc::ClientContext ctx;
    pb::LoadReply reply;
    const grpc::Status st = stub_->Load(&ctx, load, &reply);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  for (uint64_t request : {7u, 8u}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    pb::ResultRequest req;
    req.set_request(request);
    req.add_stages("const");
    auto reader = stub_->Result(&ctx, req);
    pb::ResultEvent ev, last;
    while (reader->Read(&ev)) last = ev;
    const grpc::Status st = reader->Finish();
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_TRUE(last.last());
    ASSERT_EQ(last.outputs_size(), 1);
    float v[2];
    ASSERT_EQ(last.outputs(0).data().size(), sizeof v);
    std::memcpy(v, last.outputs(0).data().data(), sizeof v);
    EXPECT_EQ(v[0], 1.5f);
    EXPECT_EQ(v[1], -2.0f);
  }
}

}  // namespace
}  // namespace moirai
