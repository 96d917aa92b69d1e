// Subcommand registry of the CLI: each cmd_*.cpp registers one subcommand; main() builds the app from them.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "moirai/error.h"

namespace moirai::cli {

/// Adds one subcommand to the app. `order` sorts subcommands in --help.
using CommandSetup = std::function<void(CLI::App& app)>;
bool register_command(int order, CommandSetup setup);

/// Prints "moirai: error: MESSAGE" to stderr and ends the command with exit status 1.
[[noreturn]] void fail(const std::string& message);
/// fail() with a library error's message, followed by the flag of the setting it names (Error::setting).
[[noreturn]] void fail(const Error& error);

/// A positive integer written in full ("12"; not "12x", "0" or "-1"), or nullopt.
std::optional<int64_t> positive_integer(const std::string& text);
/// --dim NAME=VALUE entries as a map; fail() names the malformed entry.
std::map<std::string, int64_t> parse_dims(const std::vector<std::string>& entries);
/// --workers "dev=host:port,dev2=host:port" as device -> address; fail() names the bad entry.
std::map<std::string, std::string> parse_workers(const std::string& text);

/// Option checks with one-line messages ("--threads: must be an integer from 1 to 1024, got '0'"): a finite
/// number (an integer when `integer`) within [lo, hi]; a non-empty string (a path).
CLI::Validator within(double lo, double hi, bool integer = false);
CLI::Validator non_empty();

/// The value, or fail() with the error.
template <class T>
T unwrap(Expected<T> result) {
  if (!result.ok()) fail(result.error());
  return std::move(result).value();
}

}  // namespace moirai::cli
