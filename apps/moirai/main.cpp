// moirai: place one inference model across heterogeneous devices. This file only assembles the subcommands.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "commands.h"

namespace moirai::cli {
namespace {
std::vector<std::pair<int, CommandSetup>>& registry() {
  static std::vector<std::pair<int, CommandSetup>> commands;
  return commands;
}
}  // namespace

bool register_command(int order, CommandSetup setup) {
  registry().emplace_back(order, std::move(setup));
  return true;
}

void fail(const std::string& message) {
  std::cerr << "moirai: error: " << message << "\n";
  throw CLI::RuntimeError(1);
}

namespace {
// The flag of each library setting an Error may name (the library names settings in words, never as flags).
const std::map<std::string, std::string>& flags_of_settings() {
  static const std::map<std::string, std::string> flags = {
      {"cluster", "--cluster"},   {"clusters", "--clusters"},  {"context", "--context"},
      {"device", "--device"},     {"dims", "--dim NAME=VALUE"}, {"max_latency_ms", "--max-latency-ms"},
      {"max_nodes", "--max-nodes"}, {"methods", "--methods"},  {"models", "--models"},
      {"out_dir", "--out"},       {"requests", "--requests"},  {"workers", "--workers"}};
  return flags;
}
}  // namespace

void fail(const Error& error) {
  auto flag = flags_of_settings().find(error.setting);
  fail(flag == flags_of_settings().end() ? error.message : error.message + " (" + flag->second + ")");
}

std::optional<int64_t> positive_integer(const std::string& text) {
  try {
    size_t used = 0;
    const long long value = std::stoll(text, &used);
    if (used == text.size() && value > 0) return value;
  } catch (const std::invalid_argument&) {
  } catch (const std::out_of_range&) {
  }
  return std::nullopt;
}

std::map<std::string, std::string> parse_workers(const std::string& text) {
  std::map<std::string, std::string> out;
  std::stringstream ss(text);
  std::string entry;
  while (std::getline(ss, entry, ',')) {
    const size_t eq = entry.find('=');
    const size_t colon = entry.rfind(':');
    if (eq == std::string::npos || eq == 0 || colon == std::string::npos || colon < eq + 2 || colon + 1 == entry.size())
      fail(fmt::format("--workers: '{}' is not DEVICE=HOST:PORT", entry));
    const std::string device = entry.substr(0, eq);
    if (out.count(device)) fail(fmt::format("--workers: device '{}' is named twice", device));
    out[device] = entry.substr(eq + 1);
  }
  if (out.empty()) fail("--workers: no DEVICE=HOST:PORT given");
  return out;
}

std::map<std::string, int64_t> parse_dims(const std::vector<std::string>& entries) {
  std::map<std::string, int64_t> dims;
  for (const auto& entry : entries) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) fail("--dim '" + entry + "': expected NAME=VALUE, e.g. --dim batch=4");
    const auto value = positive_integer(entry.substr(eq + 1));
    if (!value) fail("--dim '" + entry + "': the value must be a positive integer");
    dims[entry.substr(0, eq)] = *value;
  }
  return dims;
}

CLI::Validator within(double lo, double hi, bool integer) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double x = std::strtod(text.c_str(), &end);
        const bool ok = !text.empty() && *end == '\0' && errno == 0 && std::isfinite(x) && x >= lo && x <= hi &&
                        (!integer || x == std::floor(x));
        return ok ? "" : fmt::format("must be {} from {:g} to {:g}, got '{}'", integer ? "an integer" : "a number", lo, hi, text);
      },
      fmt::format("{:g}..{:g}", lo, hi));
}

CLI::Validator non_empty() {
  return CLI::Validator([](std::string& text) { return text.empty() ? std::string("must not be empty") : std::string(); },
                        "NONEMPTY");
}

}  // namespace moirai::cli

int main(int argc, char** argv) {
  CLI::App app{
      "moirai: decide how to run one deep-learning inference model across several different devices so that a\n"
      "request finishes as fast as possible without any device running out of memory.\n\n"
      "Typical use:\n"
      "  moirai inspect models/resnet50.onnx                 what is in a model\n"
      "  moirai place models/resnet50.onnx --cluster clusters/hetero-gpu-server.json --method milp --out plan/\n"
      "  moirai place instances/example-1.json --method all  compare every method on a profiled instance\n",
      "moirai"};
  app.require_subcommand(1);
  // A usage error is one line, like every other error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("moirai: error: ") + e.what() + " (see --help)\n";
  });
  app.set_version_flag("--version", "moirai 0.1.0");
  auto& commands = moirai::cli::registry();
  std::stable_sort(commands.begin(), commands.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : commands) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "moirai: internal error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
