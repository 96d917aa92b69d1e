// Running a Node tool as a child process (private to src/export): shell quoting, the command's exit status
// and output, and the last lines of that output for error messages.
#pragma once

#include <string>
#include <utility>

namespace moirai::export_detail {

/// `s` in single quotes for /bin/sh.
std::string quote(const std::string& s);
/// Runs a shell command; returns (exit status, stdout + stderr); status -1 when it could not start or was killed.
std::pair<int, std::string> run_command(const std::string& command);
/// The last `count` lines of `text`.
std::string last_lines(std::string text, size_t count);
/// The Node executable: $MOIRAI_NODE, else `node`.
std::string node_executable();

}  // namespace moirai::export_detail
