// A tiny linear-programming model (columns, sparse rows, minimise) solved with CLP. Used by the LP relaxations
// of m-SCT (favourite children) and GETF (speed-group assignment); the MILP placer has its own model.
#pragma once

#include <limits>
#include <utility>
#include <vector>

namespace moirai::place {

inline constexpr double kLpInf = std::numeric_limits<double>::infinity();

/// min c'x subject to row_lb <= A x <= row_ub and col_lb <= x <= col_ub.
class LinearProgram {
 public:
  /// Adds a column and returns its index.
  int add_column(double lb, double ub, double objective);
  /// Adds a row lb <= sum(coef * x[col]) <= ub (use +-kLpInf for a one-sided row).
  void add_row(const std::vector<std::pair<int, double>>& terms, double lb, double ub);

  int num_columns() const { return static_cast<int>(col_lb_.size()); }
  int num_rows() const { return static_cast<int>(row_lb_.size()); }

  struct Result {
    bool optimal = false;
    double objective = 0;
    std::vector<double> x;  ///< column values (empty unless optimal)
  };
  /// Solves with CLP's dual simplex, silently. `time_limit_s` <= 0 means no limit.
  Result solve(double time_limit_s = 0) const;

 private:
  std::vector<double> col_lb_, col_ub_, obj_;
  std::vector<double> row_lb_, row_ub_;
  std::vector<int> rows_, cols_;
  std::vector<double> coefs_;
};

}  // namespace moirai::place
