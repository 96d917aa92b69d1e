// BTSearch (MemoriaNova): depth-first search over the sets of executed operators for the topological order
// with the smallest peak memory. Follows the paper's ingredients: (a) memoisation of the best peak reached per
// executed set (the future depends only on the set), (b) pruning when a step reaches the best complete
// order's peak, (c) a per-state lower bound max(current peak, largest footprint of an operator still to run),
// (d) greedy seeding and greedy child order (least live memory after the step first). Departures: a dominance
// rule (a ready operator whose step does not raise the peak and that frees at least what it allocates runs
// at once, without branching: moving it earlier never raises any later step), exact set keys (Zobrist hash
// plus the bitset, so no collision can prune wrongly), and an early stop at a caller-supplied lower bound.
#include "search.h"

#include <algorithm>
#include <cstdint>
#include <limits>

namespace moirai::sched {
namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// Best peak seen per executed set: open addressing on the Zobrist hash, the bitset stored to compare keys.
class Memo {
 public:
  Memo(size_t words, long long cap) : words_(words), cap_(cap) { slots_.assign(1 << 12, 0); }

  /// Returns true when the state is dominated (seen with a peak <= `peak`); records `peak` otherwise.
  bool seen_better(uint64_t hash, const std::vector<uint64_t>& bits, double peak) {
    const size_t mask = slots_.size() - 1;
    for (size_t s = hash & mask;; s = (s + 1) & mask) {
      const uint32_t e = slots_[s];
      if (e == 0) {
        if (static_cast<long long>(hashes_.size()) >= cap_) return false;
        slots_[s] = static_cast<uint32_t>(hashes_.size() + 1);
        hashes_.push_back(hash);
        peaks_.push_back(peak);
        keys_.insert(keys_.end(), bits.begin(), bits.end());
        if (hashes_.size() * 2 > slots_.size()) grow();
        return false;
      }
      const size_t i = e - 1;
      if (hashes_[i] == hash && std::equal(bits.begin(), bits.end(), keys_.begin() + static_cast<long>(i * words_))) {
        if (peaks_[i] <= peak) return true;
        peaks_[i] = peak;
        return false;
      }
    }
  }

 private:
  void grow() {
    std::vector<uint32_t> slots(slots_.size() * 2, 0);
    const size_t mask = slots.size() - 1;
    for (size_t i = 0; i < hashes_.size(); ++i) {
      size_t s = hashes_[i] & mask;
      while (slots[s] != 0) s = (s + 1) & mask;
      slots[s] = static_cast<uint32_t>(i + 1);
    }
    slots_.swap(slots);
  }

  size_t words_;
  long long cap_;
  std::vector<uint32_t> slots_;
  std::vector<uint64_t> hashes_;
  std::vector<double> peaks_;
  std::vector<uint64_t> keys_;
};

/// Execution state shared by the greedy rule and the search: executed set, ready list, live memory.
class State {
 public:
  explicit State(const MemProblem& p) : p_(p) {
    const int m = p.size();
    waiting_.resize(static_cast<size_t>(m));
    for (int i = 0; i < m; ++i) {
      waiting_[static_cast<size_t>(i)] = static_cast<int>(p.preds[static_cast<size_t>(i)].size());
      if (waiting_[static_cast<size_t>(i)] == 0) ready.push_back(i);
    }
    done_.assign(p.items.size(), 0);
    live = p.base;
    for (const auto& item : p.items)
      if (item.at_start) live += item.bytes;
  }

  struct Move {
    int op;
    double step;   ///< memory while op runs
    double after;  ///< live memory once it finished
  };

  Move evaluate(int o) const {
    double alloc = 0, freed = 0;
    for (int d : p_.op_items[static_cast<size_t>(o)]) {
      const auto& item = p_.items[static_cast<size_t>(d)];
      const int done = done_[static_cast<size_t>(d)];
      if (done == 0 && !item.at_start) alloc += item.bytes;
      if (done + 1 == static_cast<int>(item.users.size()) && !item.at_end) freed += item.bytes;
    }
    return {o, live + alloc - p_.saving[static_cast<size_t>(o)], live + alloc - freed};
  }

  /// Runs ready[slot]; returns how many successors became ready (for undo).
  int apply(size_t slot, const Move& mv) {
    const int o = ready[slot];
    ready[slot] = ready.back();
    ready.pop_back();
    for (int d : p_.op_items[static_cast<size_t>(o)]) ++done_[static_cast<size_t>(d)];
    live = mv.after;
    int released = 0;
    for (int s : p_.succs[static_cast<size_t>(o)])
      if (--waiting_[static_cast<size_t>(s)] == 0) {
        ready.push_back(s);
        ++released;
      }
    return released;
  }

  void undo(size_t slot, int o, int released, double live_before) {
    for (int s : p_.succs[static_cast<size_t>(o)]) ++waiting_[static_cast<size_t>(s)];
    ready.resize(ready.size() - static_cast<size_t>(released));
    for (int d : p_.op_items[static_cast<size_t>(o)]) --done_[static_cast<size_t>(d)];
    if (slot == ready.size()) {
      ready.push_back(o);
    } else {
      ready.push_back(ready[slot]);
      ready[slot] = o;
    }
    live = live_before;
  }

  std::vector<int> ready;
  double live = 0;

 private:
  const MemProblem& p_;
  std::vector<int> waiting_;
  std::vector<int> done_;
};

bool greedy_before(const State::Move& a, const State::Move& b) {
  if (a.after != b.after) return a.after < b.after;
  if (a.step != b.step) return a.step < b.step;
  return a.op < b.op;
}

/// Entries the memo may hold: the caller's cap, and at most about 1 GiB of keys for wide problems.
long long memo_cap(int ops, long long cap) {
  const long long entry_bytes = 8 * ((ops + 63) / 64) + 32;
  return std::min(cap, (1LL << 30) / entry_bytes);
}

class Searcher {
 public:
  Searcher(const MemProblem& p, double stop_at, Clock::time_point deadline, long long cap)
      : p_(p), state_(p), memo_((static_cast<size_t>(p.size()) + 63) / 64, memo_cap(p.size(), cap)), stop_at_(stop_at),
        deadline_(deadline) {
    bits_.assign((static_cast<size_t>(p.size()) + 63) / 64, 0);
    zobrist_.resize(static_cast<size_t>(p.size()));
    for (int i = 0; i < p.size(); ++i) zobrist_[static_cast<size_t>(i)] = splitmix(static_cast<uint64_t>(i) + 1);
    const auto fp = op_footprints(p);
    by_footprint_.resize(static_cast<size_t>(p.size()));
    for (int i = 0; i < p.size(); ++i) by_footprint_[static_cast<size_t>(i)] = {fp[static_cast<size_t>(i)], i};
    std::sort(by_footprint_.begin(), by_footprint_.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    root_bound_ = by_footprint_.empty() ? 0.0 : by_footprint_.front().first;
  }

  SearchOutcome run(const std::vector<int>& seed) {
    best_order_ = seed;
    best_ = peak_of(p_, seed);
    SearchOutcome out;
    if (best_ > root_bound_ && best_ > stop_at_) {
      path_.reserve(static_cast<size_t>(p_.size()));
      dfs(0.0);
    }
    out.order = best_order_;
    out.peak = peak_of(p_, best_order_);
    out.proven = !aborted_;
    // Stopping at the caller's target proves the order good enough, not this part's optimum.
    out.lower_bound = out.proven && !(best_ <= stop_at_ && best_ > root_bound_) ? out.peak : root_bound_;
    out.states = nodes_;
    return out;
  }

 private:
  double remaining_bound() const {
    for (const auto& [fp, i] : by_footprint_)
      if (!executed(i)) return fp;
    return 0.0;
  }
  bool executed(int i) const { return (bits_[static_cast<size_t>(i) / 64] >> (i % 64)) & 1U; }
  void flip(int i) {
    bits_[static_cast<size_t>(i) / 64] ^= uint64_t{1} << (i % 64);
    hash_ ^= zobrist_[static_cast<size_t>(i)];
  }

  void dfs(double peak) {
    if ((++nodes_ & 1023) == 0 && Clock::now() >= deadline_) aborted_ = true;
    if (aborted_ || finished_) return;
    if (static_cast<int>(path_.size()) == p_.size()) {
      if (peak < best_) {
        best_ = peak;
        best_order_ = path_;
        if (best_ <= stop_at_ || best_ <= root_bound_) finished_ = true;
      }
      return;
    }
    if (std::max(peak, remaining_bound()) >= best_) return;
    if (memo_.seen_better(hash_, bits_, peak)) return;

    std::vector<State::Move> moves;
    moves.reserve(state_.ready.size());
    const State::Move* forced = nullptr;
    for (int o : state_.ready) moves.push_back(state_.evaluate(o));
    for (const auto& mv : moves)
      if (mv.step <= peak && mv.after <= state_.live && (!forced || greedy_before(mv, *forced))) forced = &mv;
    if (forced) {
      const State::Move keep = *forced;
      moves.assign(1, keep);
    } else {
      std::sort(moves.begin(), moves.end(), greedy_before);
    }
    for (const auto& mv : moves) {
      const double next_peak = std::max(peak, mv.step);
      if (next_peak >= best_) continue;
      const size_t slot = static_cast<size_t>(std::find(state_.ready.begin(), state_.ready.end(), mv.op) -
                                              state_.ready.begin());
      const double live_before = state_.live;
      const int released = state_.apply(slot, mv);
      flip(mv.op);
      path_.push_back(mv.op);
      dfs(next_peak);
      path_.pop_back();
      flip(mv.op);
      state_.undo(slot, mv.op, released, live_before);
      if (aborted_ || finished_) return;
    }
  }

  const MemProblem& p_;
  State state_;
  Memo memo_;
  double stop_at_;
  Clock::time_point deadline_;
  std::vector<uint64_t> bits_;
  uint64_t hash_ = 0;
  std::vector<uint64_t> zobrist_;
  std::vector<std::pair<double, int>> by_footprint_;
  double root_bound_ = 0;
  std::vector<int> path_;
  std::vector<int> best_order_;
  double best_ = std::numeric_limits<double>::infinity();
  long long nodes_ = 0;
  bool aborted_ = false;
  bool finished_ = false;
};

}  // namespace

std::vector<int> greedy(const MemProblem& p) {
  State state(p);
  std::vector<int> order;
  order.reserve(static_cast<size_t>(p.size()));
  while (!state.ready.empty()) {
    size_t pick = 0;
    State::Move best = state.evaluate(state.ready[0]);
    for (size_t k = 1; k < state.ready.size(); ++k) {
      const auto mv = state.evaluate(state.ready[k]);
      if (greedy_before(mv, best)) {
        best = mv;
        pick = k;
      }
    }
    order.push_back(best.op);
    state.apply(pick, best);
  }
  MOIRAI_CHECK(static_cast<int>(order.size()) == p.size(), "operator graph has a cycle");
  return order;
}

SearchOutcome exact_search(const MemProblem& p, const std::vector<int>& seed, double stop_at,
                           Clock::time_point deadline, long long max_memo_states) {
  MOIRAI_CHECK(is_valid_order(p, seed), "seed is not a topological order");
  Searcher searcher(p, stop_at, deadline, max_memo_states);
  return searcher.run(seed);
}

}  // namespace moirai::sched
