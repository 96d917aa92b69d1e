// profile.json (version 2) and the measured cluster.json as `moirai profile` writes them: they read back with
// the times, the per-stage overhead and the thread count they were written with (no runtime needed here; the
// measurement itself runs in bench/fidelity.sh and in the export tests' runs).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "moirai/export.h"
#include "support/random_table.h"

namespace moirai {
namespace {

ProfileResult measured() {
  ProfileResult r;
  r.threads = 1;
  r.stage_overhead_ms = 0.0625;
  r.call_ms = 0.03125;
  r.handoff_gbps = 2.0;
  r.ops = {OpProfile{"conv", "Conv", 1.03125, 0, 1.0, -1}, OpProfile{"relu", "Relu", 0.03, 0, 0.0, -1}};
  return r;
}

CostTable two_cpus() {
  CostTable t;
  t.name = "m";
  t.device_names = {"cpu0", "cpu1"};
  t.capacity = {1e9, 1e9};
  t.op_names = {"conv", "relu"};
  t.time_ms = {9, 9, 9, 9};
  DataItem x;
  x.name = "x";
  x.producer = 0;
  x.consumers = {1};
  x.transfer_ms = {0, 0, 0, 0};
  t.data = {x};
  if (!t.finalize().ok()) throw std::logic_error("table");
  return t;
}

// Three groups measured at 1.0, 0.05 and 0.04 ms with a 0.1 ms call probe and the whole model at 0.9 ms: the
// groups take 0.19 ms beyond the whole model, less than their two extra calls (0.2 ms), so there is no hand-off
// cost, and net of a call the small ones clip to 0 (0.9 + 0 + 0). Scaled to the whole model less one call
// (0.8 ms): 0.8, 0, 0, so a one-stage plan is predicted at the whole model's time.
TEST(Profile, GroupsAddUpToTheWholeModelWhenTheCallProbeOverstatesSmallCalls) {
  ProfileGroups groups;
  GroupTimes times;
  for (const auto& [name, ms] : {std::pair{"a", 1.0}, std::pair{"b", 0.05}, std::pair{"c", 0.04}}) {
    groups.groups.push_back(ProfileGroup{name, "Op", -1, 1000});
    groups.manifest.submodels.push_back(ManifestModel{std::string("s") + name, "", "cpu", {name}, {}, {}});
    times.submodel_ms[std::string("s") + name] = ms;
  }
  times.original_ms = 0.9;
  times.call_ms = 0.1;
  const ProfileResult r = profile_result(groups, times);
  EXPECT_EQ(r.handoff_gbps, 1e6);
  ASSERT_EQ(r.ops.size(), 3u);
  EXPECT_NEAR(r.compute_scale, 0.8 / 0.9, 1e-12);
  EXPECT_NEAR(r.ops[0].compute_ms, 0.8, 1e-12);
  EXPECT_EQ(r.ops[1].compute_ms, 0);
  EXPECT_EQ(r.ops[2].compute_ms, 0);

  // Groups that pay more than their calls: the excess (0.9 ms) is the hand-off of a's bytes, nothing clips
  // (0.5 + 0.2 + 0.1) and no scaling is needed.
  times.submodel_ms = {{"sa", 1.5}, {"sb", 0.3}, {"sc", 0.2}};
  groups.groups[1].handoff_bytes = groups.groups[2].handoff_bytes = 0;
  const ProfileResult h = profile_result(groups, times);
  EXPECT_NEAR(h.compute_scale, 1.0, 1e-12);
  double sum = 0;
  for (const auto& op : h.ops) sum += op.compute_ms;
  EXPECT_NEAR(sum, 0.8, 1e-12);
}

TEST(Profile, Version2RoundTrip) {
  const auto dir = std::filesystem::temp_directory_path() / ("moirai-profile-rt-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "profile.json").string();
  std::ofstream(path) << profile_json(measured(), {"cpu0", "cpu1"});
  CostTable t = two_cpus();
  ASSERT_TRUE(apply_profile(t, path).ok());
  EXPECT_EQ(t.time_ms, (std::vector<double>{1.0, 1.0, 0.0, 0.0}));  // compute only, on both workers
  EXPECT_EQ(t.stage_overhead_ms, (std::vector<double>{0.0625, 0.0625}));
  // Both on cpu0: one stage, one overhead: 0.0625 + 1 + 0.
  Placement p{{0, 0}, {}, {}};
  EXPECT_DOUBLE_EQ(simulate(t, p).makespan_ms, 1.0625);
  // Split: two stages, two overheads (the in-process hand-off costs nothing).
  p.device = {0, 1};
  EXPECT_DOUBLE_EQ(simulate(t, p).makespan_ms, 1.125);
  std::filesystem::remove_all(dir);
}

TEST(Profile, MeasuredClusterRoundTrip) {
  auto base = load_cluster(testing::source_path("clusters/local-cpu.json"));
  ASSERT_TRUE(base.ok());
  auto c = measured_cluster(measured(), *base, "cpu", {"cpu0", "cpu1"});
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto back = parse_cluster(cluster_json(*c), "cluster.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->size(), 2);
  for (const auto& d : back->devices) {
    EXPECT_DOUBLE_EQ(d.stage_overhead_us, 62.5);
    EXPECT_EQ(d.threads, 1);
    EXPECT_EQ(d.peak_gflops, base->devices[0].peak_gflops);  // analytic figures of the base device are kept
    EXPECT_GT(d.memory_bytes, 0);
  }
  EXPECT_EQ(back->devices[1].name, "cpu1");
  // In-process: no latency; out of one session and into the next, 2 GB/s each way.
  EXPECT_DOUBLE_EQ(back->transfer_ms(0, 1, 1e6), 1.0);
  auto missing = measured_cluster(measured(), *base, "gpu", {"gpu"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "local-cpu: no device named 'gpu'");
  EXPECT_EQ(missing.error().setting, "device");
}

}  // namespace
}  // namespace moirai
