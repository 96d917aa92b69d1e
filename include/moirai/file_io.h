// Writing output files atomically: every file moirai writes goes through here, so a failed run never leaves a
// half-written file.
#pragma once

#include <string>

#include "moirai/error.h"

namespace moirai {

/// Writes `contents` to a temporary file in the same directory, then renames it over `path`: readers see the
/// old file or the new one, never a half file; no temporary file is left behind on failure.
Status write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace moirai
