// How EASE reaches its weights for a data shape: which of its two exact routes costs less, the
// fit plus the scoring of the users it will score, in multiply-adds (leading terms). Header-only
// so that the plugin and its tests use the same arithmetic.
//
// - gram: the n x n Gram matrix (m x^2 for m users of x items each), potrf + potri (n^3/2), B
//   formed; scoring sums the B rows of a user's x items: x n per user.
// - woodbury: X X^T (m^2 n), potrf (m^3/6), the triangular solve W = L^-1 X (m^2 n / 2); B is
//   not formed; scoring is x W^T (the W^T rows of the user's items: x m) then times W (m n).
#pragma once

#include <cstdint>

namespace recrun::ease {

enum class Route { gram, woodbury };

/// A data shape as the costs see it.
struct Shape {
  /// Users with a training history (m).
  double users = 0;
  /// Items (n).
  double items = 0;
  /// Mean distinct items per such user (x).
  double items_per_user = 0;
  /// Users the run will score: validation and test score every user once each, so about
  /// 2 m by default.
  double scored_users = 0;
};

/// Multiply-adds of fitting and of scoring.
struct Cost {
  double fit = 0, score = 0;
  double total() const { return fit + score; }
};

inline Cost cost(Route route, const Shape& s) {
  const double m = s.users, n = s.items, x = s.items_per_user, u = s.scored_users;
  if (route == Route::gram) return {m * x * x + n * n * n / 2, u * x * n};
  return {m * m * n + m * m * m / 6 + m * m * n / 2, u * (x * m + m * n)};
}

/// The cheaper route; Woodbury needs lambda > 0 (it divides by it) and at least one user.
inline Route choose_route(const Shape& s, bool woodbury_possible) {
  if (!woodbury_possible || s.users <= 0) return Route::gram;
  return cost(Route::woodbury, s).total() < cost(Route::gram, s).total() ? Route::woodbury
                                                                         : Route::gram;
}

}  // namespace recrun::ease
