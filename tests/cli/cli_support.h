// Test support for the end-to-end CLI tests: run the built `moirai` binary in a shell, capture its stdout,
// stderr and exit status, and make scratch directories that are removed afterwards.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace moirai::clitest {

namespace fs = std::filesystem;

/// Path of a file in the source tree.
inline std::string src(const std::string& relative) { return std::string(MOIRAI_SOURCE_DIR) + "/" + relative; }

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

/// Single-quotes an argument for /bin/sh.
inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// A scratch directory, removed with its contents when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "moirai-cli-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

struct RunResult {
  int rc = -1;  ///< exit status; 128 + N when killed by signal N
  std::string out, err;
  std::string command;

  /// Lines of stderr that are error lines of the CLI ("moirai: error: ...").
  std::vector<std::string> error_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("moirai: error:", 0) == 0) lines.push_back(line);
    return lines;
  }
  /// For failure messages.
  std::string describe() const {
    return "command: " + command + "\nexit: " + std::to_string(rc) + "\nstdout:\n" + out.substr(0, 4000) +
           "\nstderr:\n" + err.substr(0, 4000);
  }
};

/// Runs `moirai ARGS` (ARGS already quoted as needed) with stdout and stderr captured.
inline RunResult moirai(const std::string& args) {
  TempDir capture;
  RunResult r;
  r.command = std::string(MOIRAI_CLI) + " " + args;
  const std::string out = capture / "stdout", err = capture / "stderr";
  const std::string cmd = quote(MOIRAI_CLI) + " " + args + " >" + quote(out) + " 2>" + quote(err) + " </dev/null";
  const int status = std::system(cmd.c_str());
  if (status == -1) {
    r.rc = -1;
  } else if (WIFEXITED(status)) {
    r.rc = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.rc = 128 + WTERMSIG(status);
  }
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

/// The method names listed by `moirai place --help` after "every method:".
inline std::vector<std::string> methods_from_help() {
  const RunResult r = moirai("place --help");
  EXPECT_EQ(r.rc, 0) << r.describe();
  const auto at = r.out.find("every method:");
  if (at == std::string::npos) return {};
  std::string list = r.out.substr(at + 13);
  list = list.substr(0, list.find('\n'));
  std::vector<std::string> names;
  std::regex word("[A-Za-z0-9_-]+");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), word); it != std::sregex_iterator(); ++it)
    names.push_back(it->str());
  return names;
}

inline nlohmann::json parse_json(const std::string& text) { return nlohmann::json::parse(text); }

/// True when `dir` does not exist or is an empty directory.
inline bool absent_or_empty(const fs::path& dir) { return !fs::exists(dir) || (fs::is_directory(dir) && fs::is_empty(dir)); }

/// The run failed cleanly: non-zero status (not a crash or an internal error), exactly one
/// "moirai: error: ..." line on stderr, which contains every string in `expected`.
inline void expect_clean_error(const RunResult& r, const std::vector<std::string>& expected) {
  EXPECT_NE(r.rc, 0) << r.describe();
  EXPECT_LT(r.rc, 126) << "crashed (signal) " << r.describe();
  EXPECT_NE(r.rc, 2) << "internal error " << r.describe();
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.describe();
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.describe();
  EXPECT_EQ(r.err.find("check failed"), std::string::npos) << r.describe();
  const auto lines = r.error_lines();
  ASSERT_EQ(lines.size(), 1u) << "expected exactly one 'moirai: error:' line\n" << r.describe();
  std::string missing;
  for (const auto& s : expected)
    if (lines[0].find(s) == std::string::npos) missing += " '" + s + "'";
  EXPECT_TRUE(missing.empty()) << "the error line lacks" << missing << "\n" << r.describe();
}

}  // namespace moirai::clitest
