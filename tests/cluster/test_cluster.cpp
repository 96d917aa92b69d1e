// Cluster files: every bundled cluster loads, units are converted, pair overrides apply per direction, and each
// kind of bad input gives one clear line naming the file and the problem.
#include <filesystem>

#include <gtest/gtest.h>

#include "moirai/cluster.h"
#include "support/random_table.h"

namespace moirai {
namespace {

using testing::source_path;

std::string error_of(const Expected<Cluster>& c) { return c.ok() ? std::string("(no error)") : c.error().message; }

TEST(Cluster, EveryBundledClusterLoads) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_path("clusters"))) {
    if (entry.path().extension() != ".json") continue;
    auto c = load_cluster(entry.path().string());
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_GE(c->size(), 1) << entry.path();
    EXPECT_EQ(c->links.size(), static_cast<size_t>(c->size() * c->size()));
    ++count;
  }
  EXPECT_GE(count, 6);
}

TEST(Cluster, UnitsAndPairOverrides) {
  auto c = load_cluster(source_path("clusters/hetero-gpu-server.json"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->name, "hetero-gpu-server");
  ASSERT_EQ(c->size(), 4);
  const DeviceId a100 = c->find("a100"), xeon = c->find("xeon"), t4 = c->find("t4"), v100 = c->find("v100");
  EXPECT_EQ(a100, 0);
  EXPECT_EQ(c->find("nope"), -1);
  EXPECT_DOUBLE_EQ(c->devices[0].memory_bytes, 40.0 * 1024 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(c->devices[0].peak_gflops_fp16, 312000);
  EXPECT_DOUBLE_EQ(c->devices[0].launch_us, 5);
  EXPECT_EQ(c->devices[3].kind, "cpu");
  // Override in one direction only: a100 -> xeon 24 GB/s, xeon -> a100 22 GB/s, both 8 us.
  EXPECT_DOUBLE_EQ(c->link(a100, xeon).bandwidth_gbps, 24.0);
  EXPECT_DOUBLE_EQ(c->link(xeon, a100).bandwidth_gbps, 22.0);
  EXPECT_DOUBLE_EQ(c->link(a100, xeon).latency_us, 8.0);
  // A pair that gives only a bandwidth keeps the default latency (10 us).
  EXPECT_DOUBLE_EQ(c->link(t4, a100).bandwidth_gbps, 6.0);
  EXPECT_DOUBLE_EQ(c->link(t4, a100).latency_us, 10.0);
  EXPECT_DOUBLE_EQ(c->link(v100, t4).bandwidth_gbps, 12.0);
  // 1 MB (1e6 bytes) from a100 to xeon: 8 us + 1e6 / 24e9 s = 0.008 + 0.041666... ms.
  EXPECT_NEAR(c->transfer_ms(a100, xeon, 1e6), 0.008 + 1e6 / 24e9 * 1e3, 1e-15);
  EXPECT_EQ(c->transfer_ms(a100, a100, 1e9), 0.0);
}

TEST(Cluster, DevicesWithoutPeakFigures) {
  auto c = load_cluster(source_path("clusters/moirai-sample-4dev.json"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->devices[0].peak_gflops, 0.0);
  EXPECT_EQ(c->devices[0].kind, "unknown");
  EXPECT_DOUBLE_EQ(c->link(0, 2).bandwidth_gbps, 0.865);
  EXPECT_DOUBLE_EQ(c->link(2, 0).bandwidth_gbps, 0.90);
}

TEST(Cluster, MissingFile) {
  const std::string path = source_path("tests/fixtures/cluster/does-not-exist.json");
  EXPECT_EQ(error_of(load_cluster(path)), path + ": cannot open the cluster file");
}

TEST(Cluster, InvalidJson) {
  const std::string path = source_path("tests/fixtures/cluster/invalid.json");
  const std::string e = error_of(load_cluster(path));
  EXPECT_EQ(e.rfind(path + ": invalid JSON: ", 0), 0u) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST(Cluster, MissingFieldNamesIt) {
  const std::string path = source_path("tests/fixtures/cluster/missing_memory.json");
  EXPECT_EQ(error_of(load_cluster(path)), path + ": missing field devices[2].memory_gib");
  EXPECT_EQ(error_of(parse_cluster(R"({"name": "x", "devices": [{"name": "a", "memory_gib": 1}]})", "x.json")),
            "x.json: missing field links");
  EXPECT_EQ(error_of(parse_cluster(R"({"devices": []})", "x.json")), "x.json: missing field name");
}

TEST(Cluster, NegativeBandwidth) {
  const char* text = R"({"name": "x", "devices": [{"name": "a", "memory_gib": 1}, {"name": "b", "memory_gib": 1}],
    "links": {"default": {"bandwidth_gbps": 1}, "pairs": [{"src": "a", "dst": "b", "bandwidth_gbps": -2}]}})";
  EXPECT_EQ(error_of(parse_cluster(text, "x.json")),
            "x.json: field links.pairs[0].bandwidth_gbps must be a number from 1e-06 to 1e+06 GB/s, got -2");
  const char* zero = R"({"name": "x", "devices": [{"name": "a", "memory_gib": 1}],
    "links": {"default": {"bandwidth_gbps": 0}}})";
  EXPECT_EQ(error_of(parse_cluster(zero, "x.json")),
            "x.json: field links.default.bandwidth_gbps must be a number from 1e-06 to 1e+06 GB/s, got 0");
}

TEST(Cluster, DuplicateDeviceName) {
  const char* text = R"({"name": "x", "devices": [{"name": "a", "memory_gib": 1}, {"name": "a", "memory_gib": 2}],
    "links": {"default": {"bandwidth_gbps": 1}}})";
  EXPECT_EQ(error_of(parse_cluster(text, "x.json")), "x.json: duplicate device name 'a' (devices[0] and devices[1])");
}

TEST(Cluster, UnknownDeviceInPair) {
  const char* text = R"({"name": "x", "devices": [{"name": "a", "memory_gib": 1}, {"name": "b", "memory_gib": 1}],
    "links": {"default": {"bandwidth_gbps": 1}, "pairs": [{"src": "a", "dst": "c", "bandwidth_gbps": 2}]}})";
  EXPECT_EQ(error_of(parse_cluster(text, "x.json")), "x.json: links.pairs[0].dst names an unknown device 'c'");
}

TEST(Cluster, WrongType) {
  const char* text = R"({"name": "x", "devices": [{"name": "a", "memory_gib": "lots"}],
    "links": {"default": {"bandwidth_gbps": 1}}})";
  EXPECT_EQ(error_of(parse_cluster(text, "x.json")), "x.json: field devices[0].memory_gib must be a number from 0 to 1e+06 GiB, got \"lots\"");
}

// reserved_gib: the documented default per kind, an explicit figure, and one line for each bad value.
TEST(Cluster, ReservedMemoryPerDevice) {
  auto one = [](const std::string& device) {
    return parse_cluster(R"({"name": "x", "devices": [)" + device + R"(], "links": {"default": {"bandwidth_gbps": 1}}})",
                         "x.json");
  };
  const double gib = 1024.0 * 1024 * 1024;
  auto gpu = one(R"({"name": "g", "kind": "gpu", "memory_gib": 24})");
  ASSERT_TRUE(gpu.ok()) << gpu.error().message;
  EXPECT_DOUBLE_EQ(gpu->devices[0].reserved_bytes, default_reserved_gib("gpu") * gib);
  EXPECT_DOUBLE_EQ(gpu->devices[0].usable_bytes(), (24 - default_reserved_gib("gpu")) * gib);
  auto cpu = one(R"({"name": "c", "kind": "cpu", "memory_gib": 64})");
  ASSERT_TRUE(cpu.ok());
  EXPECT_DOUBLE_EQ(cpu->devices[0].reserved_bytes, default_reserved_gib("cpu") * gib);
  // A device smaller than twice its kind's default keeps half of it back; an unknown kind keeps nothing.
  auto small = one(R"({"name": "c", "kind": "cpu", "memory_gib": 1})");
  ASSERT_TRUE(small.ok());
  EXPECT_DOUBLE_EQ(small->devices[0].reserved_bytes, 0.5 * gib);
  auto unknown = one(R"({"name": "u", "memory_gib": 3})");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->devices[0].reserved_bytes, 0.0);
  auto given = one(R"({"name": "g", "kind": "gpu", "memory_gib": 24, "reserved_gib": 2.5})");
  ASSERT_TRUE(given.ok());
  EXPECT_DOUBLE_EQ(given->devices[0].usable_bytes(), 21.5 * gib);
  auto none = one(R"({"name": "g", "kind": "gpu", "memory_gib": 24, "reserved_gib": 0})");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->devices[0].reserved_bytes, 0.0);

  EXPECT_EQ(error_of(one(R"({"name": "g", "kind": "gpu", "memory_gib": 24, "reserved_gib": 24})")),
            "x.json: field devices[0].reserved_gib must be less than memory_gib (24), got 24");
  EXPECT_EQ(error_of(one(R"({"name": "g", "kind": "gpu", "memory_gib": 24, "reserved_gib": -1})")),
            "x.json: field devices[0].reserved_gib must be a number from 0 to 1e+06 GiB, got -1");
  EXPECT_EQ(error_of(one(R"({"name": "g", "kind": "gpu", "memory_gib": 24, "reserved_gib": "1"})")),
            "x.json: field devices[0].reserved_gib must be a number from 0 to 1e+06 GiB, got \"1\"");
  // Every bundled cluster leaves each device some usable memory.
  for (const auto& entry : std::filesystem::directory_iterator(source_path("clusters"))) {
    if (entry.path().extension() != ".json") continue;
    auto c = load_cluster(entry.path().string());
    ASSERT_TRUE(c.ok()) << c.error().message;
    for (const auto& d : c->devices) EXPECT_GT(d.usable_bytes(), 0) << entry.path() << " " << d.name;
  }
}

// Absurd figures (which once reached CLP and aborted it) are rejected where they are read, naming the field.
TEST(Cluster, AbsurdFiguresAreRejected) {
  auto cluster_with = [](const std::string& device, const std::string& link) {
    return R"({"name": "x", "devices": [)" + device + R"(, {"name": "b", "memory_gib": 1}], "links": {"default": )" +
           link + "}}";
  };
  const std::string dev = R"({"name": "a", "memory_gib": 1})", link = R"({"bandwidth_gbps": 1})";
  EXPECT_EQ(error_of(parse_cluster(cluster_with(dev, R"({"bandwidth_gbps": 1, "latency_us": 1e110})"), "x.json")),
            "x.json: field links.default.latency_us must be a number from 0 to 1e+09 us, got 1e+110");
  EXPECT_EQ(error_of(parse_cluster(cluster_with(dev, R"({"bandwidth_gbps": 1e-300})"), "x.json")),
            "x.json: field links.default.bandwidth_gbps must be a number from 1e-06 to 1e+06 GB/s, got 1e-300");
  EXPECT_EQ(error_of(parse_cluster(cluster_with(R"({"name": "a", "memory_gib": 1e308})", link), "x.json")),
            "x.json: field devices[0].memory_gib must be a number from 0 to 1e+06 GiB, got 1e+308");
  EXPECT_EQ(error_of(parse_cluster(cluster_with(R"({"name": "", "memory_gib": 1})", link), "x.json")),
            "x.json: field devices[0].name must not be empty");
  EXPECT_EQ(error_of(parse_cluster(cluster_with(R"({"name": "a", "memory_gib": 1, "peak_gflops": -1})", link), "x.json")),
            "x.json: field devices[0].peak_gflops must be a number from 0 to 1e+09 GFLOP/s, got -1");
  // A number beyond a double is a JSON error, not an internal one.
  const std::string huge = error_of(parse_cluster(cluster_with(R"({"name": "a", "memory_gib": 1e400})", link), "x.json"));
  EXPECT_EQ(huge.rfind("x.json: invalid JSON: ", 0), 0u) << huge;
  EXPECT_NE(huge.find("1e400"), std::string::npos) << huge;
  // The bounds themselves are accepted.
  EXPECT_EQ(error_of(parse_cluster(cluster_with(R"({"name": "a", "memory_gib": 1e6})",
                                                R"({"bandwidth_gbps": 1e-6, "latency_us": 1e9})"), "x.json")), "(no error)");
}

}  // namespace
}  // namespace moirai

namespace moirai {
namespace {

TEST(Cluster, StageOverheadAndThreads) {
  const std::string base = R"({"name": "m", "devices": [{"name": "cpu", "memory_gib": 1)";
  const std::string links = R"(}], "links": {"default": {"bandwidth_gbps": 1}}})";
  auto c = parse_cluster(base + R"(, "stage_overhead_us": 42.5, "threads": 2)" + links, "m.json");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_DOUBLE_EQ(c->devices[0].stage_overhead_us, 42.5);
  EXPECT_EQ(c->devices[0].threads, 2);
  auto plain = parse_cluster(base + links, "m.json");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->devices[0].stage_overhead_us, 0);  // default: every existing cluster is unchanged
  EXPECT_EQ(plain->devices[0].threads, 0);
  EXPECT_EQ(error_of(parse_cluster(base + R"(, "stage_overhead_us": 2e6)" + links, "m.json")),
            "m.json: field devices[0].stage_overhead_us must be a number from 0 to 1e+06 us, got 2000000.0");
  EXPECT_EQ(error_of(parse_cluster(base + R"(, "threads": 1.5)" + links, "m.json")),
            "m.json: field devices[0].threads must be an integer, got 1.5");
  EXPECT_EQ(error_of(parse_cluster(base + R"(, "threads": -1)" + links, "m.json")),
            "m.json: field devices[0].threads must be a number from 0 to 1024 threads, got -1");
}

// The coordinator's links: optional per device and direction, read, costed, written back and checked.
TEST(Cluster, CoordinatorLinks) {
  const std::string head = R"({"name": "m", "devices": [{"name": "w0", "memory_gib": 1)";
  const std::string tail = R"(}, {"name": "w1", "memory_gib": 1}], "links": {"default": {"bandwidth_gbps": 1}}})";
  auto c = parse_cluster(head + R"(, "from_coordinator": {"bandwidth_gbps": 0.5, "latency_us": 2000},
                                    "to_coordinator": {"bandwidth_gbps": 0.25})" + tail, "m.json");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->has_coordinator_links());
  EXPECT_DOUBLE_EQ(c->push_ms(0, 1e6), 2.0 + 2.0);  // 2000 us + 1 MB / 0.5 GB/s
  EXPECT_DOUBLE_EQ(c->fetch_ms(0, 1e6), 4.0);       // no latency + 1 MB / 0.25 GB/s
  EXPECT_EQ(c->push_ms(1, 1e6), 0);                 // absent: free
  EXPECT_EQ(c->fetch_ms(1, 1e6), 0);
  auto back = parse_cluster(cluster_json(*c), "round-trip");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(cluster_json(*back), cluster_json(*c));
  EXPECT_DOUBLE_EQ(back->push_ms(0, 1e6), 4.0);
  EXPECT_DOUBLE_EQ(back->fetch_ms(0, 1e6), 4.0);
  EXPECT_FALSE(back->devices[1].from_coordinator.has_value());
  auto plain = parse_cluster(head + tail, "m.json");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->has_coordinator_links());
  EXPECT_EQ(cluster_json(*plain).find("coordinator"), std::string::npos);
  EXPECT_EQ(error_of(parse_cluster(head + R"(, "to_coordinator": {"bandwidth_gbps": 0})" + tail, "m.json")),
            "m.json: field devices[0].to_coordinator.bandwidth_gbps must be a number from 1e-06 to 1e+06 GB/s, got 0");
  EXPECT_EQ(error_of(parse_cluster(head + R"(, "from_coordinator": {"latency_us": 5})" + tail, "m.json")),
            "m.json: missing field devices[0].from_coordinator.bandwidth_gbps");
  EXPECT_EQ(error_of(parse_cluster(head + R"(, "from_coordinator": 3)" + tail, "m.json")),
            "m.json: field devices[0].from_coordinator must be an object");
}

TEST(Cluster, JsonRoundTrip) {
  for (const char* name : {"hetero-gpu-server", "edge-4", "local-cpu"}) {
    auto c = load_cluster(source_path(std::string("clusters/") + name + ".json"));
    ASSERT_TRUE(c.ok());
    c->devices[0].stage_overhead_us = 17.25;
    c->devices[0].threads = 3;
    auto back = parse_cluster(cluster_json(*c), "round-trip");
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(cluster_json(*back), cluster_json(*c));
    ASSERT_EQ(back->size(), c->size());
    for (int d = 0; d < c->size(); ++d) {
      EXPECT_EQ(back->devices[static_cast<size_t>(d)].memory_bytes, c->devices[static_cast<size_t>(d)].memory_bytes);
      EXPECT_EQ(back->devices[static_cast<size_t>(d)].stage_overhead_us, c->devices[static_cast<size_t>(d)].stage_overhead_us);
      for (int e = 0; e < c->size(); ++e) EXPECT_EQ(back->transfer_ms(d, e, 12345), c->transfer_ms(d, e, 12345));
    }
  }
}

TEST(Cluster, FitLinkRecoversLatencyAndBandwidth) {
  // 150 us + bytes / 0.5 GB/s, with +-2% multiplicative noise on every sample.
  std::vector<TransferSample> samples;
  uint32_t state = 12345;
  for (double bytes : {1e3, 1e5, 1e6, 4e6, 16e6, 64e6})
    for (int rep = 0; rep < 5; ++rep) {
      state = state * 1664525u + 1013904223u;
      const double noise = 1.0 + 0.04 * (static_cast<double>(state >> 8) / 16777216.0 - 0.5);
      samples.push_back({bytes, (0.150 + bytes / 0.5e9 * 1e3) * noise});
    }
  auto fit = fit_link(samples);
  ASSERT_TRUE(fit.ok()) << fit.error().message;
  EXPECT_NEAR(fit->link.bandwidth_gbps, 0.5, 0.5 * 0.02);
  EXPECT_NEAR(fit->link.latency_us, 150, 60);  // small next to the 128 ms of the largest size's noise band
  EXPECT_GT(fit->r2, 0.99);
  EXPECT_EQ(fit->samples, 30);
  // Exact samples give exact figures.
  auto exact = fit_link({{0, 0.2}, {1e6, 1.2}, {2e6, 2.2}});
  ASSERT_TRUE(exact.ok());
  EXPECT_NEAR(exact->link.latency_us, 200, 1e-6);
  EXPECT_NEAR(exact->link.bandwidth_gbps, 1.0, 1e-9);
  EXPECT_NEAR(exact->r2, 1.0, 1e-12);
  // A negative intercept is no latency: the line goes through the origin.
  auto origin = fit_link({{1e6, 0.9}, {2e6, 2.0}, {3e6, 3.1}});
  ASSERT_TRUE(origin.ok());
  EXPECT_EQ(origin->link.latency_us, 0);
  EXPECT_NEAR(origin->link.bandwidth_gbps, 14e12 / 14.2e6 * 1e3 / 1e9, 1e-9);  // bytes^2 / (bytes x ms)
}

TEST(Cluster, FitLinkRelativeKeepsTheLatencyOfSmallTransfers) {
  // 2 ms + bytes / 0.1 GB/s, the largest size 60% slow (a busy machine): least squares lets that one point pull
  // the intercept below zero (no latency at all); least relative error keeps it near the small transfers' 2 ms.
  const std::vector<TransferSample> samples{{4, 2.0}, {262144, 2.0 + 2.62144}, {1048576, 2.0 + 10.48576},
                                            {4194304, (2.0 + 41.94304) * 1.6}};
  auto plain = fit_link(samples);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->link.latency_us, 0);
  auto relative = fit_link_relative(samples);
  ASSERT_TRUE(relative.ok()) << relative.error().message;
  EXPECT_NEAR(relative->link.latency_us, 2000, 200);
  EXPECT_NEAR(relative->link.bandwidth_gbps, 0.085, 0.01);  // the slow point still costs bandwidth
  // Exact samples give the exact figures either way.
  auto exact = fit_link_relative({{0, 0.2}, {1e6, 1.2}, {2e6, 2.2}});
  ASSERT_TRUE(exact.ok());
  EXPECT_NEAR(exact->link.latency_us, 200, 1e-6);
  EXPECT_NEAR(exact->link.bandwidth_gbps, 1.0, 1e-9);
  EXPECT_EQ(fit_link_relative({{1e6, 1}}).error().message,
            "fitting a link needs transfers of at least two sizes, got 1 sample(s) of 1 size(s)");
}

TEST(Cluster, FitLinkRejectsUnusableSamples) {
  auto error = [](const std::vector<TransferSample>& s) {
    auto fit = fit_link(s);
    return fit.ok() ? std::string("(no error)") : fit.error().message;
  };
  EXPECT_EQ(error({}), "fitting a link needs transfers of at least two sizes, got 0 sample(s) of 0 size(s)");
  EXPECT_EQ(error({{1e6, 1}, {1e6, 1.1}}), "fitting a link needs transfers of at least two sizes, got 2 sample(s) of 1 size(s)");
  EXPECT_EQ(error({{1e6, 1}, {-1, 1}}), "transfer sample 1 is not a non-negative finite (bytes, ms) pair: (-1, 1)");
  EXPECT_EQ(error({{1e3, 2}, {1e6, 1}}), "transfer times do not grow with the size: no bandwidth can be fitted");
}

}  // namespace
}  // namespace moirai
