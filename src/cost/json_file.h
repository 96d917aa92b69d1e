// Reading a JSON input file (instances, profiles) with errors that name the file.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "moirai/error.h"

namespace moirai::cost {

/// The parsed file; `what` names it in the error ("the instance file", "the profile file").
inline Expected<nlohmann::json> read_json_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open " + what};
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {  // also out_of_range: a number too large for a double (1e400)
    return Error{path + ": invalid JSON: " + e.what()};
  }
}

}  // namespace moirai::cost
