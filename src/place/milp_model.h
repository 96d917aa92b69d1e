// Solver-neutral MILP model: named columns with bounds and integrality, sparse rows with ranges, a linear
// objective (minimised). The Moirai formulation is built into this, tested without a solver, exported as
// MPS, and translated to CBC only when solving (src/place/milp_cbc.cpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "moirai/error.h"

namespace moirai {

/// Bound value meaning "no bound".
inline constexpr double kMilpInf = 1e30;

struct MilpModel {
  struct Column {
    std::string name;  ///< unique, no spaces (MPS)
    double lb = 0;
    double ub = kMilpInf;
    bool integer = false;
    double obj = 0;
  };
  struct Row {
    std::string name;
    std::vector<int> index;
    std::vector<double> coef;
    double lb = -kMilpInf;
    double ub = kMilpInf;
  };

  std::string name = "moirai";
  std::vector<Column> cols;
  std::vector<Row> rows;

  /// Adds a column and returns its index.
  int add_col(std::string col_name, double lb, double ub, bool integer, double obj = 0);
  /// Adds lb <= sum coef * col <= ub and returns its index; zero coefficients are dropped, repeats summed.
  int add_row(std::string row_name, const std::vector<std::pair<int, double>>& terms, double lb, double ub);

  int num_cols() const { return static_cast<int>(cols.size()); }
  int num_rows() const { return static_cast<int>(rows.size()); }
  int num_integer() const;
  long num_nonzeros() const;

  /// Objective value of a full assignment.
  double objective(const std::vector<double>& values) const;
  /// First violated bound, integrality or row (with the numbers), or "" when `values` is feasible within tol.
  std::string violation(const std::vector<double>& values, double tol = 1e-6) const;

  /// Writes free-format MPS (names kept; integer columns between MARKER lines). Errors name the file.
  Status write_mps(const std::string& path) const;
};

}  // namespace moirai
