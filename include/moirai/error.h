// Error handling: user input never aborts. Loaders return Expected<T>, whose error names the file and the
// problem; internal invariants use MOIRAI_CHECK, which throws std::logic_error (a bug, not bad input).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace moirai {

/// A user-facing error: one line naming where (file, operator, device) and what is wrong.
struct Error {
  std::string message;
  /// The caller's setting the error is about (an options field, e.g. "max_latency_ms"), or empty. Messages name
  /// settings in words; a front end adds its own name for the setting (the CLI its flag).
  std::string setting = {};
};

/// Either a value or an Error (a small std::expected for C++20).
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Expected(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return check(), std::get<0>(v_); }
  const T& value() const& { return check(), std::get<0>(v_); }
  T&& value() && { return check(), std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  void check() const {
    if (!ok()) throw std::logic_error("Expected::value() on an error: " + std::get<1>(v_).message);
  }
  std::variant<T, Error> v_;
};

/// Success or an Error, for operations without a result.
struct Ok {};
using Status = Expected<Ok>;

}  // namespace moirai

/// Evaluates `expr` (a Status or an Expected) once and returns its error from the enclosing function, which
/// returns a Status or an Expected, when it failed.
#define MOIRAI_TRY(expr)                                                \
  do {                                                                  \
    if (auto moirai_try_ = (expr); !moirai_try_.ok()) return moirai_try_.error(); \
  } while (0)

/// Evaluates `expr` (an Expected) once; on failure returns its error from the enclosing function, else moves its
/// value into `lhs`, a declaration (`auto graph`) or an existing variable.
#define MOIRAI_ASSIGN_OR_RETURN(lhs, expr) \
  MOIRAI_ASSIGN_OR_RETURN_IMPL_(MOIRAI_CONCAT_(moirai_expected_, __LINE__), lhs, expr)
#define MOIRAI_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.error();                   \
  lhs = std::move(*tmp)
#define MOIRAI_CONCAT_(a, b) MOIRAI_CONCAT_INNER_(a, b)
#define MOIRAI_CONCAT_INNER_(a, b) a##b

/// Internal invariant: a violation is a bug in moirai, never a user error.
#define MOIRAI_CHECK(cond, msg)                                                                       \
  do {                                                                                               \
    if (!(cond)) throw std::logic_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) +     \
                                        ": check failed: " #cond ": " + std::string(msg));           \
  } while (0)
