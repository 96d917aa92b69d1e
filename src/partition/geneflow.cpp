// GenEFlow: a genetic algorithm over intra-operator splits, after MemoriaNova's GenEFlow (distributed DNN
// inference on memory-constrained edge devices). A chromosome holds, per candidate operator, the split method
// (or none), the device set and the proportions; fitness = simulated makespan x (1 + 10 x relative memory
// overflow), so infeasible individuals still guide the search. Tournament selection (size 3), uniform
// crossover per operator, mutation of method / devices / proportions, elitism (2), then a short local polish of
// the best plan's proportions (parts of each operator balanced to finish together from the plan's own schedule;
// one device's share in all split operators at once, then operator by operator). Each candidate is simulated in
// the seed's device order (or the list policy) and, where a device overflows, in BTSearch's memory-optimal
// order of that device's operators (schedule.h, fit_with_memory_orders; cached per operator set).
// Departures from the paper: (1) fitness comes from our discrete-event simulator on the expanded problem (ports,
// halo exchange and gathers included) instead of an analytic latency formula; (2) operators the seed keeps whole
// stay on the seed's device (GenEFlow re-places only what it splits); (3) besides random individuals the first
// generation holds "uniform" individuals (every candidate split the same way over the k fastest devices in
// proportion to speed), because fused-layer gains need neighbours split alike, and a mutation copies a gene onto
// the next few operators for the same reason; (4) the seed plan is returned unless a feasible split plan beats it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "moirai/partition.h"
#include "moirai/schedule.h"
#include "internal.h"

namespace moirai {
namespace {

constexpr double kPenalty = 10.0;
// The longest splittable operators are the genes. Short ones (pools) count too: a whole pool between two row
// splits gathers and re-scatters the activation, a split one keeps the rows where they are.
constexpr int kMaxGenes = 64;

struct Gene {
  SplitDim dim = SplitDim::None;
  std::vector<double> weight;  // per device; 0 = not used
  bool operator==(const Gene&) const = default;
};

struct Individual {
  std::vector<Gene> genes;
  double fitness = std::numeric_limits<double>::infinity();
  double makespan = std::numeric_limits<double>::infinity();
  bool feasible = false;
  bool ordered = false;  // fits only with BTSearch's orders
};

class Search {
 public:
  Search(const CostTable& table, const Graph& graph, const Placement& seed, const Schedule& seed_schedule,
         const PlaceOptions& options, const Cluster* cluster)
      : table_(table), graph_(graph), seed_(seed), options_(options), cluster_(cluster), rng_(options.seed) {
    // A device's BTSearch is short: most candidates' devices are chains cut into tiny parts, and the cache
    // answers the sets met again; a search cut short still returns its best order.
    order_search_.time_limit_s = std::clamp(options.time_limit_s / 500, 0.01, 0.5);
    const int n = table.num_ops();
    std::vector<int> pos(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) pos[static_cast<size_t>(table.topo_order[static_cast<size_t>(i)])] = i;
    seed_rank_.resize(static_cast<size_t>(n));
    for (OpId o = 0; o < n; ++o)
      seed_rank_[static_cast<size_t>(o)] = {seed_schedule.ops[static_cast<size_t>(o)].start_ms, pos[static_cast<size_t>(o)]};
  }

  // A seed that came with its own device orders (the MILP's, or BTSearch's memory orders) keeps them when
  // operators are split: every device runs its operators, parts included, in the order the seed started their
  // originals (ties: topological position). Start times respect precedence, so the orders cannot deadlock.
  void keep_seed_order(PartitionedProblem& e) const {
    if (seed_.order.empty() || !e.placement.order.empty()) return;
    std::vector<OpId> ids(e.origin.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](OpId a, OpId b) {
      return seed_rank_[static_cast<size_t>(e.origin[static_cast<size_t>(a)])] <
             seed_rank_[static_cast<size_t>(e.origin[static_cast<size_t>(b)])];
    });
    e.placement.order.assign(static_cast<size_t>(table_.num_devices()), {});
    for (OpId x : ids) e.placement.order[static_cast<size_t>(e.placement.device[static_cast<size_t>(x)])].push_back(x);
  }

  // The candidate's expanded problem and schedule: in the seed's order (or the list policy), and where a device
  // overflows, in BTSearch's memory-optimal order of its operators when that makes the plan fit.
  Expected<std::pair<PartitionedProblem, MemoryFit>> run(const std::vector<Split>& splits) {
    MOIRAI_ASSIGN_OR_RETURN(auto e, expand_splits(table_, graph_, seed_, splits, cluster_));
    keep_seed_order(e);
    MemoryFit fit = fit_with_memory_orders(e.table, e.placement, options_.sim, order_search_, &cache_);
    return std::make_pair(std::move(e), std::move(fit));
  }

  void choose_genes() {
    const int n = table_.num_ops();
    std::vector<std::pair<double, OpId>> cands;
    for (OpId o = 0; o < n; ++o) {
      auto dims = legal_splits(graph_, o);
      if (dims.empty()) continue;
      const double t = table_.time(o, seed_.device[static_cast<size_t>(o)]);
      cands.emplace_back(-t, o);
    }
    std::sort(cands.begin(), cands.end());
    if (cands.size() > kMaxGenes) cands.resize(kMaxGenes);
    std::vector<int> pos(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) pos[static_cast<size_t>(table_.topo_order[static_cast<size_t>(i)])] = i;
    std::sort(cands.begin(), cands.end(), [&](auto& a, auto& b) { return pos[static_cast<size_t>(a.second)] < pos[static_cast<size_t>(b.second)]; });
    for (const auto& c : cands) {
      ops_.push_back(c.second);
      dims_.push_back(legal_splits(graph_, c.second));
    }
  }
  int genes() const { return static_cast<int>(ops_.size()); }

  std::vector<Split> splits_of(const Individual& ind) const {
    std::vector<Split> s(static_cast<size_t>(table_.num_ops()));
    for (size_t g = 0; g < ops_.size(); ++g) {
      const Gene& gene = ind.genes[g];
      if (gene.dim == SplitDim::None) continue;
      Split& split = s[static_cast<size_t>(ops_[g])];
      for (DeviceId d = 0; d < table_.num_devices(); ++d)
        if (gene.weight[static_cast<size_t>(d)] > 0) {
          split.devices.push_back(d);
          split.shares.push_back(gene.weight[static_cast<size_t>(d)]);
        }
      if (split.devices.size() >= 2) split.dim = gene.dim;
      else split = Split{};
    }
    return s;
  }

  void evaluate(Individual& ind) {
    ++evaluations_;
    auto r = run(splits_of(ind));
    if (!r) return;  // an illegal combination: worst fitness
    const MemoryFit& fit = r->second;
    ind.makespan = fit.schedule.makespan_ms;
    ind.feasible = fit.overflow == 0;
    ind.ordered = fit.ordered;
    ind.fitness = ind.makespan * (1 + kPenalty * fit.overflow);
    if (ind.feasible && ind.makespan < best_feasible_.makespan) best_feasible_ = ind;
  }
  const OrderCache& cache() const { return cache_; }

  // Proportions of speed on this operator (1 / time), with a little noise when asked.
  Gene speed_gene(int g, SplitDim dim, const std::vector<DeviceId>& devices, double noise) {
    Gene gene{dim, std::vector<double>(static_cast<size_t>(table_.num_devices()), 0.0)};
    std::uniform_real_distribution<double> jitter(1 - noise, 1 + noise);
    for (DeviceId d : devices)
      gene.weight[static_cast<size_t>(d)] = 1.0 / std::max(1e-9, table_.time(ops_[static_cast<size_t>(g)], d)) * (noise > 0 ? jitter(rng_) : 1.0);
    return gene;
  }

  Gene random_gene(int g) {
    const auto& legal = dims_[static_cast<size_t>(g)];
    const SplitDim dim = legal[std::uniform_int_distribution<size_t>(0, legal.size() - 1)(rng_)];
    std::vector<DeviceId> devices;
    std::bernoulli_distribution use(0.7);
    for (DeviceId d = 0; d < table_.num_devices(); ++d)
      if (use(rng_)) devices.push_back(d);
    for (DeviceId d : fastest_)
      if (devices.size() < 2 && std::find(devices.begin(), devices.end(), d) == devices.end()) devices.push_back(d);
    return speed_gene(g, dim, devices, 0.3);
  }

  Individual seed_individual() const {
    Individual ind;
    ind.genes.assign(ops_.size(), Gene{SplitDim::None, std::vector<double>(static_cast<size_t>(table_.num_devices()), 0.0)});
    return ind;
  }

  std::vector<Individual> initial_population(int size) {
    // Devices by overall speed on the candidates, fastest first.
    std::vector<double> total(static_cast<size_t>(table_.num_devices()), 0.0);
    for (OpId o : ops_)
      for (DeviceId d = 0; d < table_.num_devices(); ++d) total[static_cast<size_t>(d)] += table_.time(o, d);
    fastest_.resize(static_cast<size_t>(table_.num_devices()));
    std::iota(fastest_.begin(), fastest_.end(), 0);
    std::stable_sort(fastest_.begin(), fastest_.end(), [&](DeviceId a, DeviceId b) { return total[static_cast<size_t>(a)] < total[static_cast<size_t>(b)]; });

    std::vector<Individual> pop;
    pop.push_back(seed_individual());
    for (SplitDim dim : {SplitDim::Rows, SplitDim::Tokens, SplitDim::Heads, SplitDim::Channels})
      for (int m = table_.num_devices(); m >= 2 && static_cast<int>(pop.size()) < size; --m) {
        Individual ind = seed_individual();
        const std::vector<DeviceId> devices(fastest_.begin(), fastest_.begin() + m);
        bool any = false;
        for (int g = 0; g < genes(); ++g) {
          const auto& legal = dims_[static_cast<size_t>(g)];
          if (std::find(legal.begin(), legal.end(), dim) == legal.end()) continue;
          Gene gene{dim, std::vector<double>(static_cast<size_t>(table_.num_devices()), 0.0)};
          for (DeviceId d : devices) gene.weight[static_cast<size_t>(d)] = 1.0 / total[static_cast<size_t>(d)];
          ind.genes[static_cast<size_t>(g)] = gene;
          any = true;
        }
        if (any) pop.push_back(std::move(ind));
      }
    std::bernoulli_distribution split(0.5);
    while (static_cast<int>(pop.size()) < size) {
      Individual ind = seed_individual();
      for (int g = 0; g < genes(); ++g)
        if (split(rng_)) ind.genes[static_cast<size_t>(g)] = random_gene(g);
      pop.push_back(std::move(ind));
    }
    return pop;
  }

  const Individual& tournament(const std::vector<Individual>& pop) {
    std::uniform_int_distribution<size_t> pick(0, pop.size() - 1);
    size_t best = pick(rng_);
    for (int i = 1; i < 3; ++i) {
      const size_t c = pick(rng_);
      if (pop[c].fitness < pop[best].fitness) best = c;
    }
    return pop[best];
  }

  Individual crossover(const Individual& a, const Individual& b) {
    Individual child = a;
    if (!std::bernoulli_distribution(0.9)(rng_)) return child;
    std::bernoulli_distribution coin(0.5);
    for (size_t g = 0; g < child.genes.size(); ++g)
      if (coin(rng_)) child.genes[g] = b.genes[g];
    return child;
  }

  void mutate(Individual& ind) {
    const int n = genes();
    const double rate = std::max(1.0 / n, 0.05);
    std::bernoulli_distribution hit(rate);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::normal_distribution<double> step(0.0, 0.25);
    for (int g = 0; g < n; ++g) {
      if (!hit(rng_)) continue;
      Gene& gene = ind.genes[static_cast<size_t>(g)];
      const double r = unit(rng_);
      if (r < 0.25 || gene.dim == SplitDim::None) {  // method
        if (gene.dim != SplitDim::None && unit(rng_) < 0.3) gene = Gene{SplitDim::None, std::vector<double>(gene.weight.size(), 0.0)};
        else gene = random_gene(g);
      } else if (r < 0.5) {  // toggle one device (keep two)
        const auto d = static_cast<size_t>(std::uniform_int_distribution<int>(0, table_.num_devices() - 1)(rng_));
        if (gene.weight[d] > 0) {
          const auto used = std::count_if(gene.weight.begin(), gene.weight.end(), [](double w) { return w > 0; });
          if (used > 2) gene.weight[d] = 0;
        } else {
          gene.weight[d] = 1.0 / std::max(1e-9, table_.time(ops_[static_cast<size_t>(g)], static_cast<DeviceId>(d)));
          const double sum = std::accumulate(gene.weight.begin(), gene.weight.end(), 0.0);
          gene.weight[d] = std::min(gene.weight[d], sum);  // keep scales comparable
        }
      } else if (r < 0.8) {  // proportions
        for (double& w : gene.weight)
          if (w > 0) w *= std::exp(step(rng_));
      } else {  // copy onto the next few operators (fused-layer runs)
        const int len = std::uniform_int_distribution<int>(1, 8)(rng_);
        for (int h = g + 1; h < std::min(n, g + 1 + len); ++h) {
          const auto& legal = dims_[static_cast<size_t>(h)];
          if (gene.dim == SplitDim::None || std::find(legal.begin(), legal.end(), gene.dim) != legal.end())
            ind.genes[static_cast<size_t>(h)] = gene;
        }
      }
    }
  }

  // Balancing polish: re-derive every split operator's proportions from the best plan's own schedule so that its
  // parts finish together. A part that started at s and ran e - s for share w progresses at r = w / (e - s); the
  // common finish T with sum r (T - s) = 1 gives the new shares r (T - s) (0 for a part that would start after
  // T). Start times move once the shares do, so the step repeats (full and half steps) while it helps.
  void balance(double time_left_s, const std::function<double()>& elapsed) {
    const double stop = elapsed() + time_left_s;
    for (int round = 0; round < 20 && best_feasible_.feasible && elapsed() < stop; ++round) {
      auto r = run(splits_of(best_feasible_));
      if (!r) return;
      const PartitionedProblem& e = r->first;
      const Schedule& s = r->second.schedule;
      Individual target = best_feasible_;
      bool changed = false;
      for (size_t g = 0; g < ops_.size(); ++g) {
        const auto& specs = e.specs[static_cast<size_t>(ops_[g])];
        const auto& ids = e.parts_of[static_cast<size_t>(ops_[g])];
        if (specs.size() < 2) continue;
        double sum_rate = 0, sum_rate_start = 0;
        std::vector<double> rate(specs.size()), start(specs.size());
        for (size_t i = 0; i < specs.size(); ++i) {
          const OpSpan& span = s.ops[static_cast<size_t>(ids[i])];
          start[i] = span.start_ms;
          rate[i] = span.end_ms > span.start_ms ? specs[i].share / (span.end_ms - span.start_ms) : 0.0;
          sum_rate += rate[i];
          sum_rate_start += rate[i] * start[i];
        }
        if (!(sum_rate > 0)) continue;
        const double finish = (1 + sum_rate_start) / sum_rate;
        Gene& gene = target.genes[g];
        std::fill(gene.weight.begin(), gene.weight.end(), 0.0);
        int used = 0;
        for (size_t i = 0; i < specs.size(); ++i) {
          const double w = std::max(0.0, rate[i] * (finish - start[i]));
          gene.weight[static_cast<size_t>(specs[i].device)] += w;
          used += w > 0;
        }
        if (used < 2) gene = best_feasible_.genes[g];  // a one-device "split" is no split: keep it
        changed = changed || !(gene == best_feasible_.genes[g]);
      }
      if (!changed) return;
      const double before = best_feasible_.makespan;
      for (double step : {1.0, 0.5}) {
        Individual cand = best_feasible_;
        for (size_t g = 0; g < cand.genes.size(); ++g) {
          Gene& gene = cand.genes[g];
          if (gene.dim == SplitDim::None) continue;
          const double old_sum = std::accumulate(gene.weight.begin(), gene.weight.end(), 0.0);
          const double new_sum = std::accumulate(target.genes[g].weight.begin(), target.genes[g].weight.end(), 0.0);
          if (!(old_sum > 0 && new_sum > 0)) continue;
          for (size_t d = 0; d < gene.weight.size(); ++d)
            gene.weight[d] = (1 - step) * gene.weight[d] / old_sum + step * target.genes[g].weight[d] / new_sum;
        }
        evaluate(cand);
        if (best_feasible_.makespan < before) break;
      }
      if (!(best_feasible_.makespan < before * (1 - 1e-9))) return;
    }
  }

  // Local polish of the best plan: scale one device's proportion in every split operator at once (the GA moves
  // genes one by one; balancing a fused run needs them to move together). Stops when no step improves.
  void polish(double time_left_s, const std::function<double()>& elapsed) {
    if (!best_feasible_.feasible) return;
    const double stop = elapsed() + time_left_s;
    for (int pass = 0; pass < 6 && elapsed() < stop; ++pass) {
      bool improved = false;
      for (DeviceId d = 0; d < table_.num_devices(); ++d)
        for (double f : {0.6, 0.8, 0.9, 1.1, 1.25, 1.6}) {
          Individual cand = best_feasible_;
          bool changed = false;
          for (Gene& gene : cand.genes)
            if (gene.dim != SplitDim::None && gene.weight[static_cast<size_t>(d)] > 0) {
              gene.weight[static_cast<size_t>(d)] *= f;
              changed = true;
            }
          if (!changed) continue;
          const double before = best_feasible_.makespan;
          evaluate(cand);
          improved = improved || best_feasible_.makespan < before;
        }
      for (size_t g = 0; g < best_feasible_.genes.size() && elapsed() < stop; ++g)  // then operator by operator
        for (DeviceId d = 0; d < table_.num_devices(); ++d)
          for (double f : {0.85, 1.15}) {
            Individual cand = best_feasible_;
            Gene& gene = cand.genes[g];
            if (gene.dim == SplitDim::None || gene.weight[static_cast<size_t>(d)] <= 0) continue;
            gene.weight[static_cast<size_t>(d)] *= f;
            const double before = best_feasible_.makespan;
            evaluate(cand);
            improved = improved || best_feasible_.makespan < before;
          }
      if (!improved) break;
    }
  }

  Individual best_feasible_;
  int evaluations_ = 0;

 private:
  const CostTable& table_;
  const Graph& graph_;
  const Placement& seed_;
  const PlaceOptions& options_;
  const Cluster* cluster_;
  std::mt19937_64 rng_;
  std::vector<OpId> ops_;
  std::vector<std::vector<SplitDim>> dims_;
  std::vector<DeviceId> fastest_;
  std::vector<std::pair<double, int>> seed_rank_;  // per operator: (seed start, topological position)
  SearchOptions order_search_;
  OrderCache cache_;
};

}  // namespace

Expected<PartitionResult> geneflow(const CostTable& table, const Graph* coarse_graph, const Placement& seed,
                                   const PlaceOptions& options, const Cluster* cluster) {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  if (auto status = check_placement(table, seed); !status) return Error{"geneflow: the seed plan: " + status.error().message};
  const Graph empty;
  const Graph& graph = coarse_graph ? *coarse_graph : empty;
  const std::vector<Split> whole(static_cast<size_t>(table.num_ops()));
  MOIRAI_ASSIGN_OR_RETURN(auto seed_result, evaluate_splits(table, graph, seed, whole, options.sim, cluster));
  const double seed_ms = seed_result.makespan_ms;
  if (!coarse_graph || table.num_devices() < 2 || coarse_graph->num_ops() != table.num_ops()) {
    seed_result.search_time_s = elapsed();
    return seed_result;
  }

  Search search(table, graph, seed, seed_result.schedule, options, cluster);
  search.choose_genes();
  const int population = std::max(4, options.population);
  int generation = 0;
  if (search.genes() > 0) {
    std::vector<Individual> pop = search.initial_population(population);
    for (auto& ind : pop) search.evaluate(ind);
    auto by_fitness = [](const Individual& a, const Individual& b) { return a.fitness < b.fitness; };
    for (generation = 1; generation <= options.generations && elapsed() < options.time_limit_s; ++generation) {
      std::stable_sort(pop.begin(), pop.end(), by_fitness);
      std::vector<Individual> next(pop.begin(), pop.begin() + 2);  // elitism
      while (static_cast<int>(next.size()) < population) {
        const Individual& a = search.tournament(pop);
        const Individual& b = search.tournament(pop);
        Individual child = search.crossover(a, b);
        search.mutate(child);
        search.evaluate(child);
        next.push_back(std::move(child));
      }
      pop = std::move(next);
      if (options.progress)
        options.progress(fmt::format("geneflow: generation {}/{}, best {:.4f} ms (seed {:.4f} ms), {} evaluations, "
                                     "{} BTSearch runs, {} cache hits",
                                     generation, options.generations, search.best_feasible_.makespan, seed_ms,
                                     search.evaluations_, search.cache().misses(), search.cache().hits()));
    }
    generation = std::min(generation - 1, options.generations);
    search.balance(std::max(0.0, options.time_limit_s - elapsed()), elapsed);
    search.polish(std::max(0.0, options.time_limit_s - elapsed()), elapsed);
    search.balance(std::max(0.0, options.time_limit_s - elapsed()), elapsed);
  }

  PartitionResult result;
  const Individual& best = search.best_feasible_;
  std::optional<std::pair<PartitionedProblem, MemoryFit>> chosen;
  if (best.feasible && best.makespan < seed_ms * (1 - 1e-9)) {
    // The cache returns the orders the search found.
    MOIRAI_ASSIGN_OR_RETURN(auto r, search.run(search.splits_of(best)));
    // A BTSearch cut by its time limit after the cache was emptied may order differently: keep the seed then.
    if (r.second.overflow == 0 && r.second.schedule.makespan_ms < seed_ms * (1 - 1e-9)) chosen = std::move(r);
  }
  if (chosen) {
    result = finish_partition(table, search.splits_of(best), std::move(chosen->first), std::move(chosen->second.schedule),
                              seed_ms);
    result.memory_ordered = chosen->second.ordered;
  } else {
    result = std::move(seed_result);
  }
  result.seed_makespan_ms = seed_ms;
  result.genes = search.genes();
  result.generations = generation;
  result.evaluations = search.evaluations_;
  result.order_searches = search.cache().misses();
  result.order_cache_hits = search.cache().hits();
  result.search_time_s = elapsed();
  return result;
}

}  // namespace moirai
