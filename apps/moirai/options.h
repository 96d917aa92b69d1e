// Command-line options shared by the subcommands that load a problem (place, simulate, schedule, bench).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "moirai/pipeline.h"
#include "moirai/placer.h"
#include "moirai/progress.h"
#include "moirai/stream.h"

namespace moirai::cli {

struct ProblemArgs {
  std::string input;
  std::string cluster;
  std::string fusion = "onnxruntime";
  int max_nodes = 0;
  std::vector<std::string> dims;
  std::string profile;
  std::string context;  ///< --context N (or "max" where the command allows it)
};

/// --cluster, --fusion, --max-nodes, --dim, --profile (the positional MODEL is added by the caller).
void add_problem_options(CLI::App& cmd, ProblemArgs& args);
/// Converts to the library's options; fails the command on a malformed --dim or --context. `--context max` is
/// accepted only with `allow_max` and sets no dim (the caller searches for it).
ProblemOptions problem_options(const ProblemArgs& args, bool allow_max = false);

/// --time-limit, --gap, --threads, --seed, --episodes, --generations, --population, --no-contention.
void add_place_options(CLI::App& cmd, PlaceOptions& options, bool& no_contention);
/// --requests, --arrival, --in-flight: the stream a plan is measured under (moirai/stream.h).
void add_stream_options(CLI::App& cmd, StreamOptions& options);

/// -q/--quiet and -v/--verbose: how much progress a long command shows on stderr (moirai/progress.h).
void add_verbosity_options(CLI::App& cmd, Verbosity& verbosity);

}  // namespace moirai::cli
