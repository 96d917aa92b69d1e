// `moirai simulate` judges a plan file as written (validate_as_written), not only its re-simulation. Property:
// for random valid plans, every single-field tampering from a list (operator times and devices, transfers'
// times, devices and deletion, makespan, peak memory) is rejected with a message naming that field, and the
// untouched plan passes. Also: an order that contradicts precedence is a clear error, not a deadlock.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "moirai/pipeline.h"
#include "moirai/simulate.h"
#include "support/random_table.h"

namespace moirai {
namespace {

using json = nlohmann::json;

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "  " + x + "\n";
  return s;
}

struct Tampering {
  std::string name;
  std::string path;  ///< the element a message must name before its ':' ("ops[3]", "transfers[0]", "makespan_ms")
  std::string key;   ///< the field that must be named there too ("start_ms", "device", ...)
  std::function<void(json&)> apply;
};

// The tamperings of one plan: each changes one field of one operator, transfer, device or the plan.
std::vector<Tampering> tamperings(const json& plan, std::mt19937_64& rng) {
  std::vector<Tampering> out;
  const auto devices = plan["devices"].size();
  auto other_device = [&](const std::string& name) {
    for (size_t d = 0;; ++d)
      if (plan["devices"][d]["name"] != name) return plan["devices"][d]["name"].get<std::string>();
  };
  const size_t i = rng() % plan["ops"].size();
  const std::string op = "ops[" + std::to_string(i) + "]";
  const double dur = plan["ops"][i]["end_ms"].get<double>() - plan["ops"][i]["start_ms"].get<double>();
  out.push_back({"op start later", op, "start_ms", [=](json& p) { p["ops"][i]["start_ms"] = p["ops"][i]["start_ms"].get<double>() + 0.3 * dur; }});
  out.push_back({"op end later", op, "end_ms", [=](json& p) { p["ops"][i]["end_ms"] = p["ops"][i]["end_ms"].get<double>() + 0.3 * dur; }});
  out.push_back({"op end before start", op, "end_ms", [=](json& p) { p["ops"][i]["end_ms"] = p["ops"][i]["start_ms"].get<double>() - 1; }});
  out.push_back({"op on another device", op, "device",
                 [=](json& p) { p["ops"][i]["device"] = other_device(p["ops"][i]["device"]); }});
  if (!plan["transfers"].empty()) {
    const size_t j = rng() % plan["transfers"].size();
    const std::string tr = "transfers[" + std::to_string(j) + "]";
    out.push_back({"transfer start later", tr, "start_ms", [=](json& p) { p["transfers"][j]["start_ms"] = p["transfers"][j]["start_ms"].get<double>() + 0.25; }});
    out.push_back({"transfer end later", tr, "end_ms", [=](json& p) { p["transfers"][j]["end_ms"] = p["transfers"][j]["end_ms"].get<double>() + 0.25; }});
    out.push_back({"transfer from another device", tr, "src",
                   [=](json& p) { p["transfers"][j]["src"] = other_device(p["transfers"][j]["src"]); }});
    out.push_back({"transfer to another device", tr, "dst",
                   [=](json& p) { p["transfers"][j]["dst"] = other_device(p["transfers"][j]["dst"]); }});
    out.push_back({"transfer to an unknown device", tr, "dst", [=](json& p) { p["transfers"][j]["dst"] = "nowhere"; }});
    out.push_back({"transfer deleted", "transfers", "transfers", [=](json& p) { p["transfers"].erase(j); }});
  }
  out.push_back({"makespan edited", "makespan_ms", "makespan_ms", [](json& p) { p["makespan_ms"] = 10.0 + p["makespan_ms"].get<double>(); }});
  const size_t d = rng() % devices;
  out.push_back({"peak memory edited", "devices[" + std::to_string(d) + "]", "peak_memory_bytes",
                 [=](json& p) { p["devices"][d]["peak_memory_bytes"] = p["devices"][d]["peak_memory_bytes"].get<double>() + 1; }});
  return out;
}

std::vector<std::string> as_written(const Problem& problem, const json& plan, const SimOptions& sim) {
  auto file = parse_plan(plan.dump(), "p.json");
  if (!file.ok()) return {file.error().message};
  auto v = validate_as_written(problem, *file, sim);
  return v.ok() ? *v : std::vector<std::string>{v.error().message};
}

TEST(PlanAsWritten, EverySingleFieldTamperingIsNamed) {
  int checked = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Problem problem;
    problem.table = testing::random_table(seed, {.ops = 12, .devices = 3});
    PlaceResult result;
    std::mt19937_64 rng(seed);
    for (OpId op = 0; op < problem.table.num_ops(); ++op) result.placement.device.push_back(static_cast<DeviceId>(rng() % 3));
    const SimOptions sim{seed % 3 != 0};
    const Schedule schedule = simulate(problem.table, result.placement, sim);
    const json plan = json::parse(plan_json(make_plan(problem.table, result, schedule, "random", 0.5, sim)));
    ASSERT_TRUE(as_written(problem, plan, sim).empty()) << "seed " << seed << "\n" << joined(as_written(problem, plan, sim));

    for (const Tampering& t : tamperings(plan, rng)) {
      json bad = plan;
      t.apply(bad);
      const auto v = as_written(problem, bad, sim);
      ASSERT_FALSE(v.empty()) << "seed " << seed << ": '" << t.name << "' accepted";
      const bool named = std::any_of(v.begin(), v.end(), [&](const std::string& m) {
        const std::string fields = m.substr(0, m.find(": "));
        return fields.find(t.path) != std::string::npos && fields.find(t.key) != std::string::npos;
      });
      EXPECT_TRUE(named) << "seed " << seed << ": '" << t.name << "': no message names " << t.path << " and " << t.key
                         << "\n" << joined(v);
      ++checked;
    }
  }
  EXPECT_GT(checked, 400);
}

TEST(PlanAsWritten, OverlappingTransfersOnOnePortAreNamed) {
  // Move one transfer onto another from the same device: the send port carries two at once.
  int found = 0;
  for (uint64_t seed = 1; seed <= 20 && found < 5; ++seed) {
    Problem problem;
    problem.table = testing::random_table(seed, {.ops = 12, .devices = 2});
    PlaceResult result;
    for (OpId op = 0; op < problem.table.num_ops(); ++op) result.placement.device.push_back(op % 2);
    const Schedule schedule = simulate(problem.table, result.placement, {true});
    json plan = json::parse(plan_json(make_plan(problem.table, result, schedule, "alternating", 0, {true})));
    const json& tr = plan["transfers"];
    for (size_t a = 0; a < tr.size(); ++a)
      for (size_t b = a + 1; b < tr.size(); ++b) {
        if (tr[a]["src"] != tr[b]["src"]) continue;
        json bad = plan;
        const double shift = tr[a]["start_ms"].get<double>() - tr[b]["start_ms"].get<double>();
        for (const char* key : {"start_ms", "end_ms"}) bad["transfers"][b][key] = tr[b][key].get<double>() + shift;
        const auto v = as_written(problem, bad, {true});
        const std::string ta = "transfers[" + std::to_string(a) + "].start_ms/end_ms";
        const std::string tb = "transfers[" + std::to_string(b) + "].start_ms/end_ms";
        EXPECT_TRUE(std::any_of(v.begin(), v.end(), [&](const std::string& m) {
          return m.rfind(ta + ", " + tb + ": send port", 0) == 0 || m.rfind(tb + ", " + ta + ": send port", 0) == 0;
        })) << "seed " << seed << "\n" << joined(v);
        ++found;
        a = b = tr.size();  // one pair per plan
      }
  }
  EXPECT_EQ(found, 5);
}

TEST(PlanAsWritten, OrderAgainstPrecedenceIsAClearError) {
  Problem problem;
  problem.table = testing::random_table(3, {.ops = 6, .devices = 2});
  PlaceResult result;
  result.placement.device.assign(6, 0);  // a chain op0 -> op1 -> ... on one device
  const Schedule schedule = simulate(problem.table, result.placement, {});
  json plan = json::parse(plan_json(make_plan(problem.table, result, schedule, "chain", 0, {})));
  plan["ops"][2]["start_ms"] = -1.0;  // op2 now comes first in dev0's order, before its input from op1
  auto file = parse_plan(plan.dump(), "p.json");
  ASSERT_TRUE(file.ok());
  auto run = resimulate(problem, *file, {});
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().message,
            "p.json: ops[2].start_ms: operator 'op2' on 'dev0' comes before its input 't1' can be produced (by 'op1'): "
            "the start times order the devices against precedence");
}

}  // namespace
}  // namespace moirai
