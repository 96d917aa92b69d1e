// `moirai schedule MODEL`: peak memory of running the whole model on one device in the file's order, DFS, BFS,
// greedy and BTSearch orders (include/moirai/schedule.h); writes the best order. Without --cluster a model is
// costed on a generic single device (peak memory does not depend on the device; capacity checks need one).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "moirai/file_io.h"
#include "moirai/coarsen.h"
#include "moirai/import.h"
#include "moirai/runtime_fusion.h"
#include "moirai/schedule.h"
#include "options.h"

namespace moirai::cli {
namespace {

struct ScheduleArgs {
  ProblemArgs problem;
  std::string device;
  double time_limit_s = 10;
  bool in_place = false;
  bool no_partition = false;
  bool json = false;
  std::string out;
  Verbosity verbosity = Verbosity::normal;
};

std::string mib(double bytes) { return fmt::format("{:.2f}", bytes / (1024.0 * 1024.0)); }

void run(const ScheduleArgs& args) {
  ProblemOptions options = problem_options(args.problem);
  const bool has_cluster = !args.problem.cluster.empty();
  if (!args.device.empty() && !has_cluster) fail("--device needs --cluster (the device's capacity comes from it)");
  const bool instance = std::filesystem::path(options.input).extension() == ".json";
  if (!has_cluster && !instance) options.cluster = generic_cluster();
  const CostTable table = unwrap(load_problem(options)).table;
  const std::string model = std::filesystem::path(options.input).stem().string();

  std::vector<DeviceId> devices;
  if (!args.device.empty()) {
    const auto it = std::find(table.device_names.begin(), table.device_names.end(), args.device);
    if (it == table.device_names.end())
      fail(fmt::format("device '{}' is not in cluster {} (devices: {})", args.device, args.problem.cluster,
                       fmt::join(table.device_names, ", ")));
    devices.push_back(static_cast<DeviceId>(it - table.device_names.begin()));
  } else if (has_cluster || instance) {
    for (DeviceId d = 0; d < table.num_devices(); ++d) devices.push_back(d);
  }

  SearchOptions search;
  search.time_limit_s = args.time_limit_s;
  search.memory.in_place = args.in_place;
  search.partition = !args.no_partition;
  Progress progress(args.verbosity, stderr_sink());
  const auto task = progress.start("btsearch", args.time_limit_s);
  const auto results = compare_orders(table, {}, search);
  size_t best = results.size() - 1;  // btsearch, unless a baseline is strictly lower (a cut-short search)
  for (size_t i = 0; i < results.size(); ++i)
    if (results[i].peak_bytes < results[best].peak_bytes) best = i;
  const OrderResult& chosen = results[best];
  task.finish(fmt::format("best order {}, peak {} MiB", chosen.method, mib(chosen.peak_bytes)));

  nlohmann::json fits = nlohmann::json::array();
  for (DeviceId d : devices) {
    const double cap = table.capacity[static_cast<size_t>(d)];
    fits.push_back({{"device", table.device_names[static_cast<size_t>(d)]}, {"capacity_bytes", cap},
                    {"fits", chosen.peak_bytes <= cap}});
  }

  if (args.json) {
    nlohmann::json out;
    out["model"] = model;
    out["operators"] = table.num_ops();
    out["in_place"] = args.in_place;
    out["orders"] = nlohmann::json::array();
    for (const auto& r : results)
      out["orders"].push_back({{"method", r.method}, {"peak_bytes", r.peak_bytes}, {"time_s", r.time_s},
                               {"optimal", r.optimal}});
    out["best"] = chosen.method;
    out["lower_bound_bytes"] = results.back().lower_bound;
    out["parts"] = results.back().parts;
    out["devices"] = fits;
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << fmt::format("{}: {} operators, {} data items, fusion {}{}\n", model, table.num_ops(),
                             table.data.size(), args.problem.fusion, args.in_place ? ", in-place rule on" : "");
    std::cout << fmt::format("{:<10} {:>12} {:>10}  {}\n", "order", "peak (MiB)", "time (s)", "optimal");
    for (const auto& r : results)
      std::cout << fmt::format("{:<10} {:>12} {:>10.3f}  {}\n", r.method, mib(r.peak_bytes), r.time_s,
                               r.method == "btsearch" ? (r.optimal ? "yes" : "not proven") : "-");
    const auto& bt = results.back();
    std::cout << fmt::format("btsearch: {} parts, {} states, lower bound {} MiB\n", bt.parts, bt.states,
                             mib(bt.lower_bound));
    for (const auto& f : fits)
      std::cout << fmt::format("{} (capacity {} MiB): {}\n", f["device"].get<std::string>(),
                               mib(f["capacity_bytes"].get<double>()), f["fits"].get<bool>() ? "fits" : "does not fit");
  }

  if (!args.out.empty()) {
    nlohmann::json order;
    order["model"] = model;
    order["method"] = chosen.method;
    order["peak_bytes"] = chosen.peak_bytes;
    order["optimal"] = chosen.optimal;
    order["order"] = nlohmann::json::array();
    for (OpId o : chosen.order) order["order"].push_back(table.op_names[static_cast<size_t>(o)]);
    if (auto status = write_file_atomic(args.out, order.dump(2) + "\n"); !status) fail(status.error());
    if (!args.json) std::cout << fmt::format("wrote {} ({} order)\n", args.out, chosen.method);
  }
}

const bool registered = register_command(40, [](CLI::App& app) {
  auto args = std::make_shared<ScheduleArgs>();
  auto* cmd = app.add_subcommand(
      "schedule", "Find the operator order of least peak memory (BTSearch) and compare it with others");
  cmd->add_option("model", args->problem.input, "ONNX model or profiled instance (.json)")
      ->required()
      ->check(CLI::ExistingFile);
  add_problem_options(*cmd, args->problem);
  cmd->add_option("--device", args->device, "Check the best order's peak against this device's capacity");
  cmd->add_option("--time-limit", args->time_limit_s, "Seconds BTSearch may run")->capture_default_str();
  cmd->add_flag("--in-place", args->in_place, "Elementwise operators may overwrite an input only they read");
  cmd->add_flag("--no-partition", args->no_partition, "Search the whole graph at once (no split at cut operators)");
  cmd->add_flag("--json", args->json, "Print {\"orders\": [{\"method\", \"peak_bytes\", \"time_s\", \"optimal\"}]}");
  cmd->add_option("--out,-o", args->out, "Write the best order (operator names) to this JSON file")->check(non_empty());
  add_verbosity_options(*cmd, args->verbosity);
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
