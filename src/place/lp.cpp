// CLP back end of LinearProgram: builds a CoinPackedMatrix from triplets and runs the dual simplex.
#include "lp.h"

#include <coin/ClpSimplex.hpp>
#include <coin/CoinPackedMatrix.hpp>
#include <coin/OsiClpSolverInterface.hpp>

#include "moirai/error.h"

namespace moirai::place {

int LinearProgram::add_column(double lb, double ub, double objective) {
  col_lb_.push_back(lb);
  col_ub_.push_back(ub);
  obj_.push_back(objective);
  return num_columns() - 1;
}

void LinearProgram::add_row(const std::vector<std::pair<int, double>>& terms, double lb, double ub) {
  const int row = num_rows();
  for (const auto& [col, coef] : terms) {
    MOIRAI_CHECK(col >= 0 && col < num_columns(), "LP row names an unknown column");
    rows_.push_back(row);
    cols_.push_back(col);
    coefs_.push_back(coef);
  }
  row_lb_.push_back(lb);
  row_ub_.push_back(ub);
}

LinearProgram::Result LinearProgram::solve(double time_limit_s) const {
  Result result;
  OsiClpSolverInterface solver;
  solver.messageHandler()->setLogLevel(0);
  solver.getModelPtr()->setLogLevel(0);
  CoinPackedMatrix matrix(true, rows_.data(), cols_.data(), coefs_.data(), static_cast<CoinBigIndex>(coefs_.size()));
  // The triplet constructor sizes the matrix by the largest index seen; empty rows/columns need explicit size.
  matrix.setDimensions(num_rows(), num_columns());
  const double inf = solver.getInfinity();
  auto clamp = [inf](std::vector<double> v) {
    for (auto& x : v) x = x == kLpInf ? inf : (x == -kLpInf ? -inf : x);
    return v;
  };
  const auto clb = clamp(col_lb_), cub = clamp(col_ub_), rlb = clamp(row_lb_), rub = clamp(row_ub_);
  solver.loadProblem(matrix, clb.data(), cub.data(), obj_.data(), rlb.data(), rub.data());
  // CLP's plain limit is CPU time; on a loaded machine wall time runs ahead of it, and the budget is wall time.
  if (time_limit_s > 0) solver.getModelPtr()->setMaximumWallSeconds(time_limit_s);
  solver.initialSolve();
  if (!solver.isProvenOptimal()) return result;
  result.optimal = true;
  result.objective = solver.getObjValue();
  const double* x = solver.getColSolution();
  result.x.assign(x, x + num_columns());
  return result;
}

}  // namespace moirai::place
