// Solver-neutral MILP model and its free-format MPS writer (readable by CBC, HiGHS, SCIP, Gurobi).
#include "milp_model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "moirai/file_io.h"

namespace moirai {

int MilpModel::add_col(std::string col_name, double lb, double ub, bool integer, double obj) {
  MOIRAI_CHECK(lb <= ub, "column " + col_name + " has lb > ub");
  cols.push_back(Column{std::move(col_name), lb, ub, integer, obj});
  return num_cols() - 1;
}

int MilpModel::add_row(std::string row_name, const std::vector<std::pair<int, double>>& terms, double lb,
                       double ub) {
  std::map<int, double> merged;  // sorted by column: deterministic, duplicates summed
  for (const auto& [col, coef] : terms) {
    MOIRAI_CHECK(col >= 0 && col < num_cols(), "row " + row_name + " names a missing column");
    merged[col] += coef;
  }
  Row row;
  row.name = std::move(row_name);
  row.lb = lb;
  row.ub = ub;
  for (const auto& [col, coef] : merged) {
    if (coef == 0) continue;
    row.index.push_back(col);
    row.coef.push_back(coef);
  }
  rows.push_back(std::move(row));
  return num_rows() - 1;
}

int MilpModel::num_integer() const {
  return static_cast<int>(std::count_if(cols.begin(), cols.end(), [](const Column& c) { return c.integer; }));
}

long MilpModel::num_nonzeros() const {
  long n = 0;
  for (const auto& r : rows) n += static_cast<long>(r.index.size());
  return n;
}

double MilpModel::objective(const std::vector<double>& values) const {
  double v = 0;
  for (size_t c = 0; c < cols.size(); ++c) v += cols[c].obj * values[c];
  return v;
}

std::string MilpModel::violation(const std::vector<double>& values, double tol) const {
  if (values.size() != cols.size()) return fmt::format("{} values for {} columns", values.size(), cols.size());
  for (size_t c = 0; c < cols.size(); ++c) {
    const auto& col = cols[c];
    const double v = values[c];
    if (v < col.lb - tol || v > col.ub + tol)
      return fmt::format("column {} = {} outside [{}, {}]", col.name, v, col.lb, col.ub);
    if (col.integer && std::abs(v - std::round(v)) > tol) return fmt::format("column {} = {} not integer", col.name, v);
  }
  for (const auto& row : rows) {
    double a = 0;
    for (size_t t = 0; t < row.index.size(); ++t) a += row.coef[t] * values[static_cast<size_t>(row.index[t])];
    const double scale = tol * std::max(1.0, std::abs(a));
    if (a < row.lb - scale || a > row.ub + scale)
      return fmt::format("row {} = {} outside [{}, {}]", row.name, a, row.lb, row.ub);
  }
  return "";
}

Status MilpModel::write_mps(const std::string& path) const {
  std::ostringstream out;
  auto num = [](double v) { return fmt::format("{:.17g}", v); };
  out << "NAME " << name << "\nROWS\n N OBJ\n";
  for (const auto& r : rows) {
    const bool lo = r.lb > -kMilpInf, hi = r.ub < kMilpInf;
    const char* sense = (lo && hi) ? (r.lb == r.ub ? "E" : "G") : lo ? "G" : hi ? "L" : "N";
    out << ' ' << sense << ' ' << r.name << '\n';
  }
  // Column-major view of the rows.
  std::vector<std::vector<std::pair<int, double>>> by_col(cols.size());
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t t = 0; t < rows[r].index.size(); ++t)
      by_col[static_cast<size_t>(rows[r].index[t])].push_back({static_cast<int>(r), rows[r].coef[t]});
  out << "COLUMNS\n";
  bool in_int = false;
  int marker = 0;
  for (size_t c = 0; c < cols.size(); ++c) {
    if (cols[c].integer != in_int) {
      out << fmt::format("    MARKER{} 'MARKER' '{}'\n", marker++, cols[c].integer ? "INTORG" : "INTEND");
      in_int = cols[c].integer;
    }
    if (cols[c].obj != 0) out << "    " << cols[c].name << " OBJ " << num(cols[c].obj) << '\n';
    for (const auto& [r, coef] : by_col[c])
      out << "    " << cols[c].name << ' ' << rows[static_cast<size_t>(r)].name << ' ' << num(coef) << '\n';
    if (cols[c].obj == 0 && by_col[c].empty()) out << "    " << cols[c].name << " OBJ 0\n";  // keep it declared
  }
  if (in_int) out << fmt::format("    MARKER{} 'MARKER' 'INTEND'\n", marker++);
  out << "RHS\n";
  for (const auto& r : rows) {
    const bool lo = r.lb > -kMilpInf, hi = r.ub < kMilpInf;
    const double rhs = lo ? r.lb : hi ? r.ub : 0;
    if (rhs != 0) out << "    RHS " << r.name << ' ' << num(rhs) << '\n';
  }
  bool ranges = false;
  for (const auto& r : rows) {
    if (r.lb > -kMilpInf && r.ub < kMilpInf && r.lb != r.ub) {
      if (!ranges) out << "RANGES\n";
      ranges = true;
      out << "    RNG " << r.name << ' ' << num(r.ub - r.lb) << '\n';  // G row: [rhs, rhs + |R|]
    }
  }
  out << "BOUNDS\n";
  for (const auto& c : cols) {
    if (c.lb == c.ub) {
      out << " FX BND " << c.name << ' ' << num(c.lb) << '\n';
      continue;
    }
    if (c.lb <= -kMilpInf) out << " MI BND " << c.name << '\n';
    else out << " LO BND " << c.name << ' ' << num(c.lb) << '\n';
    if (c.ub < kMilpInf) out << " UP BND " << c.name << ' ' << num(c.ub) << '\n';
    else if (c.integer) out << " PL BND " << c.name << '\n';
  }
  out << "ENDATA\n";
  return write_file_atomic(path, out.str());
}

}  // namespace moirai
