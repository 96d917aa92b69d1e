// Structure-aware fuzzing of every JSON file a user hands us: cluster, instance, profile and plan. Each case
// parses a valid file, applies 1-3 mutations at random places of its JSON tree (delete a member, swap in a value
// of another type, an extreme number, a string taken from elsewhere in the file, a duplicated or emptied array)
// and runs what the CLI would run on it: load the problem, place it with the LP-backed and list heuristics, and,
// for plans, validate the file as written and re-simulate it. Every outcome must be a result or a one-line error
// that names the file: no crash, no exception escaping a loader (an "internal error" at the CLI), no message
// spanning several lines. Fixed seed, a few hundred cases, a few seconds.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "moirai/pipeline.h"
#include "support/random_table.h"

namespace moirai {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

/// Every node of a JSON tree as a pointer (the root excluded).
void collect(const json& node, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
  if (node.is_object()) {
    for (const auto& [key, child] : node.items()) {
      out.push_back(at / key);
      collect(child, at / key, out);
    }
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) {
      out.push_back(at / i);
      collect(node[i], at / i, out);
    }
  }
}

/// The strings and numbers of a document: mutations reuse them (a device name where an operator is expected...).
void leaves(const json& node, std::vector<json>& out) {
  if (node.is_structured()) {
    for (const auto& child : node) leaves(child, out);
  } else {
    out.push_back(node);
  }
}

/// One mutation at a random node. Returns what it did (printed when a case fails).
std::string mutate(json& doc, std::mt19937_64& rng) {
  std::vector<json::json_pointer> nodes;
  collect(doc, json::json_pointer(), nodes);
  std::vector<json> pool;
  leaves(doc, pool);
  if (nodes.empty()) return "nothing to mutate";
  const json::json_pointer at = nodes[rng() % nodes.size()];
  json& node = doc[at];
  const double inf = std::numeric_limits<double>::max();
  static const std::vector<json> odd = {nullptr, true, "", "x", 0, -1, 1e308, -1e308, 1e-308, 4e18, -4e18, 0.5,
                                        json::array(), json::object(), inf, 1e100};
  switch (rng() % 6) {
    case 0: {  // delete the member or element
      json& parent = doc[at.parent_pointer()];
      if (parent.is_object()) parent.erase(at.back());
      else parent.erase(static_cast<size_t>(std::stoul(at.back())));
      return "delete " + at.to_string();
    }
    case 1:  // a value of another kind, or an extreme number
      node = odd[rng() % odd.size()];
      return "set " + at.to_string() + " = " + node.dump();
    case 2:  // a value taken from elsewhere in the file
      node = pool.empty() ? json("") : pool[rng() % pool.size()];
      return "set " + at.to_string() + " = " + node.dump();
    case 3:  // scale a number (negative, tiny, huge)
      if (node.is_number()) {
        static const double factors[] = {-1, 0, 1e-9, 1e9, 1e300};
        node = node.get<double>() * factors[rng() % 5];
        return "scale " + at.to_string() + " to " + node.dump();
      }
      node = json::array();
      return "set " + at.to_string() + " = []";
    case 4:  // duplicate an array element (duplicate names, repeated edges)
      if (node.is_array() && !node.empty()) {
        node.push_back(node[rng() % node.size()]);
        return "duplicate an element of " + at.to_string();
      }
      node = json::object();
      return "set " + at.to_string() + " = {}";
    default:  // empty a container
      if (node.is_structured()) node.clear();
      else node = "";
      return "empty " + at.to_string();
  }
}

class Fuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("moirai-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  /// A loader's error: one line, naming the file it came from.
  static void expect_clear(const Error& e, const std::string& file, const std::string& what) {
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << what << ": " << e.message;
    EXPECT_NE(e.message.find(fs::path(file).filename().string()), std::string::npos)
        << what << ": the error does not name the file: " << e.message;
  }

  /// What the CLI runs on an accepted problem: list and LP-backed heuristics, each a plan or a one-line error.
  static void place_all(const Problem& problem, const std::string& what) {
    PlaceOptions options;
    options.time_limit_s = 1;
    for (const char* method : {"heft", "m-sct", "getf", "single"}) {
      const MethodRun run = run_method(problem, method, options);
      EXPECT_EQ(run.error.find('\n'), std::string::npos) << what << ": " << method << ": " << run.error;
      if (run.error.empty()) {
        EXPECT_TRUE(run.violations.empty()) << what << ": " << method << " made an invalid plan: "
                                            << run.violations.front();
      }
    }
  }

  /// Loads the problem the mutated file `path` is part of and places it: false when it is (clearly) rejected.
  static bool load_and_place(const ProblemOptions& options, const std::string& path, const std::string& what) {
    auto problem = load_problem(options);
    if (!problem) {
      expect_clear(problem.error(), path, what);
      return false;
    }
    place_all(*problem, what);
    return true;
  }

  /// Runs `cases` mutated copies of `original` through `check` (which loads and uses the written file).
  template <typename Check>
  void fuzz(const json& original, const std::string& file_name, int cases, uint64_t seed, Check check) {
    std::mt19937_64 rng(seed);
    int rejected = 0;
    for (int c = 0; c < cases; ++c) {
      json doc = original;
      std::string what = file_name + " case " + std::to_string(c) + ":";
      const int mutations = 1 + static_cast<int>(rng() % 3);
      for (int m = 0; m < mutations; ++m) what += " " + mutate(doc, rng) + ";";
      const std::string path = write(file_name, doc.dump(1));
      try {
        rejected += check(path, what) ? 0 : 1;
      } catch (const std::exception& e) {
        ADD_FAILURE() << what << ": internal error (exception escaped): " << e.what();
      }
    }
    std::printf("%s: %d of %d rejected\n", file_name.c_str(), rejected, cases);
    // The mutations must bite: a fuzzer whose every case is accepted (or rejected) tests nothing.
    EXPECT_GT(rejected, cases / 10) << file_name;
    EXPECT_LT(rejected, cases) << file_name;
  }

  fs::path dir_;
};

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

TEST_F(Fuzz, ClusterFiles) {
  const json original = read_json(testing::source_path("clusters/edge-4.json"));
  fuzz(original, "cluster.json", 120, 11, [&](const std::string& path, const std::string& what) {
    ProblemOptions options;
    options.input = testing::source_path("models/squeezenet1_1.onnx");
    options.cluster_path = path;
    options.coarsen.max_nodes = 12;
    return load_and_place(options, path, what);
  });
}

TEST_F(Fuzz, InstanceFiles) {
  const json original = read_json(testing::source_path("instances/example-1.json"));
  fuzz(original, "instance.json", 120, 12, [&](const std::string& path, const std::string& what) {
    ProblemOptions options;
    options.input = path;
    return load_and_place(options, path, what);
  });
}

TEST_F(Fuzz, ProfileFiles) {
  // A profile of the instance's every operator on every device, then mutated.
  const CostTable table = testing::instance("example-1");
  json profile = {{"ops", json::object()}};
  for (OpId op = 0; op < table.num_ops(); ++op)
    for (DeviceId d = 0; d < table.num_devices(); ++d)
      profile["ops"][table.op_names[static_cast<size_t>(op)]][table.device_names[static_cast<size_t>(d)]] =
          table.time(op, d);
  fuzz(profile, "profile.json", 100, 13, [&](const std::string& path, const std::string& what) {
    ProblemOptions options;
    options.input = testing::source_path("instances/example-1.json");
    options.profile_path = path;
    return load_and_place(options, path, what);
  });
}

TEST_F(Fuzz, PlanFiles) {
  // A heft plan of the bundled instance, written next to a copy of the instance it names.
  fs::copy_file(testing::source_path("instances/heft-example.json"), dir_ / "heft-example.json");
  ProblemOptions options;
  options.input = (dir_ / "heft-example.json").string();
  const Problem problem = load_problem(options).value();
  const SimOptions sim;
  const MethodRun run = run_method(problem, "heft", PlaceOptions{});
  const Plan plan = plan_of(problem, run, sim, PlanInputs{options.input, "", "", 0, {}, ""});
  const json original = json::parse(plan_json(plan, dir_.string()));
  fuzz(original, "plan.json", 150, 14, [&](const std::string& path, const std::string& what) {
    auto file = read_plan(path);
    if (!file) {
      expect_clear(file.error(), path, what);
      return false;
    }
    ProblemOptions again;
    again.input = file->inputs.model;
    auto reloaded = load_problem(again);
    if (!reloaded) {  // the plan names a missing or broken instance
      EXPECT_EQ(reloaded.error().message.find('\n'), std::string::npos) << what << ": " << reloaded.error().message;
      return false;
    }
    auto written = validate_as_written(*reloaded, *file, file->contention ? sim : SimOptions{false});
    if (!written) {
      expect_clear(written.error(), path, what);
      return false;
    }
    for (const auto& v : *written) EXPECT_EQ(v.find('\n'), std::string::npos) << what << ": " << v;
    auto again_run = resimulate(*reloaded, *file, sim);
    if (!again_run) {
      expect_clear(again_run.error(), path, what);
      return false;
    }
    return written->empty() && again_run->violations.empty();
  });
}

}  // namespace
}  // namespace moirai
