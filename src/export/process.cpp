// Child processes for the Node tools: see process.h.
#include "process.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

namespace moirai::export_detail {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "cannot start: " + command};
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string last_lines(std::string text, size_t count) {
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t pos = text.size();
  for (size_t k = 0; k < count && pos != std::string::npos && pos > 0; ++k) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == text.size() ? text : text.substr(pos + 1);
}

std::string node_executable() {
  const char* env = std::getenv("MOIRAI_NODE");
  return env && *env ? env : "node";
}

}  // namespace moirai::export_detail
