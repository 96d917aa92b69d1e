// Progress on stderr as the CLI shows it when stderr is not a terminal (a file here): one summary line per method
// by default, nothing with -q, every line the methods report with -v (the board itself: tests/graph).
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "cli/cli_support.h"

namespace moirai::clitest {
namespace {

const std::string kAll = "place " + quote(src("instances/heft-example.json")) +
                         " --method all --time-limit 2 --episodes 20 --generations 5 --population 8";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(CliProgress, NotATerminalOneSummaryLinePerMethod) {
  auto names = methods_from_help();
  std::erase(names, "all");
  ASSERT_GT(names.size(), 5u);
  const RunResult r = moirai(kAll);
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto lines = lines_of(r.err);
  ASSERT_EQ(lines.size(), names.size()) << r.describe();
  // In the order the methods ran: "heft: 80.0000 ms (ok) [0.0 s]".
  const std::regex summary(R"(([a-z0-9-]+): (\d+\.\d{4} ms \(.+\)|failed|skipped: .+) \[\d+\.\d s\])");
  for (size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, summary)) << lines[i];
    EXPECT_EQ(m[1].str(), names[i]) << lines[i];
  }
}

TEST(CliProgress, QuietPrintsNothingOnStderr) {
  const RunResult r = moirai(kAll + " -q");
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("heft"), std::string::npos) << r.describe();  // the results still go to stdout
}

TEST(CliProgress, VerboseKeepsWhatTheMethodsReport) {
  const RunResult r = moirai(kAll + " --verbose");
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_NE(r.err.find("[placeto] placeto: episode 20/20"), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("[milp] milp: exact model, "), std::string::npos) << r.describe();
  EXPECT_NE(r.err.find("\nplaceto: "), std::string::npos) << r.describe();  // the summary line too
}

TEST(CliProgress, QuietAndVerboseExcludeEachOther) {
  const RunResult r = moirai(kAll + " -q -v");
  expect_clean_error(r, {"--quiet", "--verbose"});
}

}  // namespace
}  // namespace moirai::clitest
