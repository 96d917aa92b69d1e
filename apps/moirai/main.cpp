// moirai: place one inference model across heterogeneous devices. This file only assembles the subcommands.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iostream>
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
