// plan.json: writer, reader, and mapping of a plan file's names back onto a cost table (for `moirai simulate`).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/report.h"

namespace moirai {
namespace {

using ojson = nlohmann::ordered_json;

template <class T>
double at_or(const std::vector<T>& v, size_t i, double fallback = 0) {
  return i < v.size() ? static_cast<double>(v[i]) : fallback;
}

// `path` as seen from `dir` (absolute when no relative path exists), so that a plan moves with its inputs.
std::string seen_from(const std::string& path, const std::string& dir) {
  if (path.empty() || dir.empty()) return path;
  std::error_code ec;
  const auto rel = std::filesystem::relative(path, dir, ec);
  if (!ec && !rel.empty()) return rel.generic_string();
  const auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.string();
}

// The inverse: a relative path from the plan's directory when the file is there, else as written.
std::string resolved_from(const std::string& path, const std::string& dir) {
  if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
  const auto there = (std::filesystem::path(dir) / path).lexically_normal();
  std::error_code ec;
  return std::filesystem::exists(there, ec) ? there.string() : path;
}

ojson inputs_json(const PlanInputs& in, const std::string& dir) {
  ojson dims = ojson::object();
  for (const auto& [k, v] : in.dims) dims[k] = v;
  return ojson{{"model", seen_from(in.model, dir)}, {"cluster", seen_from(in.cluster, dir)}, {"fusion", in.fusion},
               {"max_nodes", in.max_nodes},         {"dims", dims}, {"profile", seen_from(in.profile, dir)}};
}

}  // namespace

std::string plan_json(const Plan& plan, const std::string& dir) {
  const CostTable& t = plan.table;
  const Schedule& s = plan.schedule;
  const auto& device = plan.result.placement.device;
  MOIRAI_CHECK(static_cast<int>(device.size()) == t.num_ops(), "placement size differs from the table");
  MOIRAI_CHECK(static_cast<int>(s.ops.size()) == t.num_ops(), "schedule size differs from the table");
  const int n = t.num_devices();

  ojson j;
  j["version"] = 1;
  j["model"] = t.name;
  j["cluster"] = t.cluster;
  j["method"] = plan.method;
  j["makespan_ms"] = s.makespan_ms;
  if (plan.request_ms) j["predicted_request_ms"] = *plan.request_ms;
  j["placement_time_s"] = plan.placement_time_s;
  j["status"] = plan.status_text();
  if (!plan.result.mode.empty()) j["mode"] = plan.result.mode;
  if (plan.result.objective_ms > 0) j["objective_ms"] = plan.result.objective_ms;
  j["lower_bound_ms"] = plan.result.lower_bound_ms;
  if (!plan.result.lower_bound_source.empty()) j["lower_bound_source"] = plan.result.lower_bound_source;
  if (!plan.result.warm_start_method.empty()) {  // the MILP's ablation: what each step gave
    j["warm_start_method"] = plan.result.warm_start_method;
    j["warm_start_ms"] = plan.result.warm_start_ms;
    j["polished_ms"] = plan.result.polished_ms;
  }
  if (!plan.result.levels.empty()) {
    ojson levels = ojson::array();
    for (const auto& l : plan.result.levels)
      levels.push_back({{"ops", l.ops}, {"makespan_ms", l.makespan_ms}, {"status", l.status}});
    j["levels"] = levels;
  }
  const auto gap = plan.gap();
  j["gap"] = gap ? ojson(*gap) : ojson(nullptr);
  if (plan.result.train_time_s > 0) j["train_time_s"] = plan.result.train_time_s;
  j["contention"] = plan.sim.contention;
  j["objective"] = plan.objective;
  if (plan.stream) {  // serving a stream of requests with this plan (moirai/stream.h)
    const StreamFigures& f = *plan.stream;
    j["throughput_rps"] = f.throughput_rps;
    j["latency_p50_ms"] = f.latency_p50_ms;
    j["latency_p90_ms"] = f.latency_p90_ms;
    ojson util = ojson::object();
    for (size_t d = 0; d < f.utilisation.size(); ++d) util[t.device_names[d]] = f.utilisation[d];
    j["stream"] = {{"requests", f.requests},         {"in_flight", f.in_flight},
                   {"arrival_rps", f.arrival_rps},   {"latency_max_ms", f.latency_max_ms},
                   {"period_ms", f.period_ms},       {"bottleneck", f.bottleneck},
                   {"utilisation", util}};
    if (f.tokens_per_s > 0) {  // decode: the whole system's rate, every sequence in flight holding its cache
      j["stream"]["tokens_per_s"] = f.tokens_per_s;
      j["stream"]["sequences"] = f.sequences;
    }
  }
  j["inputs"] = inputs_json(plan.inputs, dir);
  ojson steps = ojson::array();
  for (const auto& st : plan.steps)
    steps.push_back({{"name", st.name}, {"nodes_before", st.nodes_before}, {"nodes_after", st.nodes_after}});
  j["coarsening"] = steps;

  const auto llm = llm_figures(plan);
  if (llm) {
    j["phase"] = llm->phase;
    if (llm->phase == "decode") {
      if (auto it = plan.inputs.dims.find("context"); it != plan.inputs.dims.end()) j["context"] = it->second;
      j["ms_per_token"] = llm->ms_per_token;
      j["tokens_per_s"] = llm->tokens_per_s;
      j["kv_cache_bytes"] = llm->kv_cache_bytes;
    } else {
      j["time_to_first_token_ms"] = llm->time_to_first_token_ms;
    }
  }
  if (plan.max_context) j["max_context"] = *plan.max_context;

  ojson devices = ojson::array();
  for (int d = 0; d < n; ++d) {
    const auto i = static_cast<size_t>(d);
    const double busy = at_or(s.busy_ms, i);
    devices.push_back({{"name", t.device_names[i]},
                       {"peak_memory_bytes", at_or(s.peak_memory, i)},
                       {"capacity_bytes", at_or(t.capacity, i)},
                       {"reserved_bytes", at_or(t.reserved, i)},
                       {"busy_ms", busy},
                       {"utilisation", s.makespan_ms > 0 ? busy / s.makespan_ms : 0.0}});
    if (llm && llm->phase == "decode") devices.back()["kv_cache_bytes"] = llm->kv_cache_per_device[i];
    if (t.models_stages()) {  // busy_ms then includes one overhead per stage
      devices.back()["stage_overhead_ms"] = t.stage_overhead_ms[i];
      devices.back()["stages"] = std::count(s.stage_device.begin(), s.stage_device.end(), d);
    }
  }
  j["devices"] = devices;

  ojson links = ojson::array();
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) {
      const double bytes = at_or(s.link_bytes, static_cast<size_t>(a * n + b));
      if (a != b && bytes > 0)
        links.push_back({{"src", t.device_names[static_cast<size_t>(a)]},
                         {"dst", t.device_names[static_cast<size_t>(b)]},
                         {"bytes", bytes}});
    }
  j["links"] = links;

  ojson ops = ojson::array();
  for (OpId op = 0; op < t.num_ops(); ++op) {
    const auto i = static_cast<size_t>(op);
    ojson o{{"name", t.op_names[i]},
            {"type", i < t.op_types.size() ? t.op_types[i] : std::string()},
            {"device", t.device_names[static_cast<size_t>(device[i])]},
            {"start_ms", s.ops[i].start_ms},
            {"end_ms", s.ops[i].end_ms},
            {"origin", i < t.op_origin.size() ? t.op_origin[i] : std::vector<std::string>{}}};
    if (s.stage.size() == device.size()) o["stage"] = s.stage[i];  // the sub-model `moirai export` puts it in
    if (i < plan.parts.size() && !plan.parts[i].empty()) {
      ojson parts = ojson::array();
      for (const auto& p : plan.parts[i])
        parts.push_back({{"device", t.device_names[static_cast<size_t>(p.device)]},
                         {"share", p.share},
                         {"start_ms", p.start_ms},
                         {"end_ms", p.end_ms}});
      o["parts"] = parts;
      if (i < plan.split_dims.size() && !plan.split_dims[i].empty()) o["split"] = plan.split_dims[i];
    }
    ops.push_back(std::move(o));
  }
  j["ops"] = ops;

  ojson transfers = ojson::array();
  for (const auto& tr : s.transfers)
    transfers.push_back({{"tensor", t.data[static_cast<size_t>(tr.data)].name},
                         {"src", t.device_names[static_cast<size_t>(tr.src)]},
                         {"dst", t.device_names[static_cast<size_t>(tr.dst)]},
                         {"start_ms", tr.start_ms},
                         {"end_ms", tr.end_ms},
                         {"bytes", tr.bytes}});
  j["transfers"] = transfers;
  return j.dump(1) + "\n";
}

// ---- reader ----

namespace {

using json = nlohmann::json;

// A figure the file does not give (JSON has no NaN, so it cannot be a value read from the file).
constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();
bool absent(double x) { return std::isnan(x); }

/// Typed access to a JSON object with errors that name the file and the key path.
struct Reader {
  const std::string& source;

  Error missing(const std::string& where) const { return Error{fmt::format("{}: missing key '{}'", source, where)}; }
  Error bad(const std::string& where, const char* want) const {
    return Error{fmt::format("{}: '{}' must be {}", source, where, want)};
  }

  // Each getter returns an error message (empty on success) to keep the call sites short.
  std::optional<Error> str(const json& obj, const char* key, const std::string& where, std::string& out,
                           bool required = true) const {
    auto it = obj.find(key);
    if (it == obj.end()) return required ? std::optional<Error>(missing(where)) : std::nullopt;
    if (!it->is_string()) return bad(where, "a string");
    out = it->get<std::string>();
    return std::nullopt;
  }
  std::optional<Error> num(const json& obj, const char* key, const std::string& where, double& out,
                           bool required = true) const {
    auto it = obj.find(key);
    if (it == obj.end()) return required ? std::optional<Error>(missing(where)) : std::nullopt;
    if (!it->is_number()) return bad(where, "a number");
    out = it->get<double>();
    return std::nullopt;
  }
  std::optional<Error> arr(const json& obj, const char* key, const std::string& where, const json*& out,
                           bool required = true) const {
    auto it = obj.find(key);
    out = nullptr;
    if (it == obj.end()) return required ? std::optional<Error>(missing(where)) : std::nullopt;
    if (!it->is_array()) return bad(where, "an array");
    out = &*it;
    return std::nullopt;
  }
};

// A reader's std::optional<Error>, returned when set (moirai/error.h's MOIRAI_TRY is for Expected).
#define READ_OR_RETURN(expr)              \
  do {                                    \
    if (auto e_ = (expr)) return *e_;     \
  } while (0)

std::optional<Error> read_inputs(const Reader& r, const json& j, PlanInputs& in) {
  if (!j.is_object()) return r.bad("inputs", "an object");
  READ_OR_RETURN(r.str(j, "model", "inputs.model", in.model));
  READ_OR_RETURN(r.str(j, "cluster", "inputs.cluster", in.cluster, false));
  READ_OR_RETURN(r.str(j, "fusion", "inputs.fusion", in.fusion, false));
  READ_OR_RETURN(r.str(j, "profile", "inputs.profile", in.profile, false));
  double max_nodes = 0;
  READ_OR_RETURN(r.num(j, "max_nodes", "inputs.max_nodes", max_nodes, false));
  in.max_nodes = static_cast<int>(max_nodes);
  if (auto it = j.find("dims"); it != j.end()) {
    if (!it->is_object()) return r.bad("inputs.dims", "an object");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_number_integer()) return r.bad("inputs.dims." + k, "an integer");
      in.dims[k] = v.get<int64_t>();
    }
  }
  return std::nullopt;
}

std::optional<Error> read_op(const Reader& r, const json& o, const std::string& where, PlanFileOp& op) {
  if (!o.is_object()) return r.bad(where, "an object");
  READ_OR_RETURN(r.str(o, "name", where + ".name", op.name));
  READ_OR_RETURN(r.str(o, "type", where + ".type", op.type, false));
  READ_OR_RETURN(r.str(o, "device", where + ".device", op.device));
  READ_OR_RETURN(r.num(o, "start_ms", where + ".start_ms", op.start_ms, false));
  READ_OR_RETURN(r.num(o, "end_ms", where + ".end_ms", op.end_ms, false));
  const json* origin = nullptr;
  READ_OR_RETURN(r.arr(o, "origin", where + ".origin", origin, false));
  if (origin)
    for (size_t k = 0; k < origin->size(); ++k) {
      if (!(*origin)[k].is_string()) return r.bad(fmt::format("{}.origin[{}]", where, k), "a string");
      op.origin.push_back((*origin)[k].get<std::string>());
    }
  READ_OR_RETURN(r.str(o, "split", where + ".split", op.split_dim, false));
  const json* parts = nullptr;
  READ_OR_RETURN(r.arr(o, "parts", where + ".parts", parts, false));
  if (parts)
    for (size_t k = 0; k < parts->size(); ++k) {
      const std::string pw = fmt::format("{}.parts[{}]", where, k);
      const json& p = (*parts)[k];
      if (!p.is_object()) return r.bad(pw, "an object");
      std::string dev;
      OpPart part;
      READ_OR_RETURN(r.str(p, "device", pw + ".device", dev));
      READ_OR_RETURN(r.num(p, "share", pw + ".share", part.share));
      READ_OR_RETURN(r.num(p, "start_ms", pw + ".start_ms", part.start_ms, false));
      READ_OR_RETURN(r.num(p, "end_ms", pw + ".end_ms", part.end_ms, false));
      op.parts.emplace_back(dev, part);
    }
  return std::nullopt;
}

}  // namespace

Expected<PlanFile> parse_plan(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // also out_of_range: a number too large for a double (1e400)
    return Error{fmt::format("{}: not JSON: {}", source, e.what())};
  }
  const Reader r{source};
  if (!j.is_object()) return Error{fmt::format("{}: a plan must be a JSON object", source)};
  PlanFile plan;
  plan.path = source;
  double version = 0;
  READ_OR_RETURN(r.num(j, "version", "version", version));
  if (version != 1) return Error{fmt::format("{}: unsupported plan version {} (this moirai reads version 1)", source, version)};
  READ_OR_RETURN(r.str(j, "model", "model", plan.model, false));
  READ_OR_RETURN(r.str(j, "cluster", "cluster", plan.cluster, false));
  READ_OR_RETURN(r.str(j, "method", "method", plan.method, false));
  READ_OR_RETURN(r.str(j, "status", "status", plan.status, false));
  READ_OR_RETURN(r.num(j, "makespan_ms", "makespan_ms", plan.makespan_ms, false));
  if (j.contains("predicted_request_ms")) {
    double request = 0;
    READ_OR_RETURN(r.num(j, "predicted_request_ms", "predicted_request_ms", request));
    plan.request_ms = request;
  }
  if (auto it = j.find("contention"); it != j.end()) {
    if (!it->is_boolean()) return r.bad("contention", "true or false");
    plan.contention = it->get<bool>();
  }
  auto in = j.find("inputs");
  if (in == j.end()) return r.missing("inputs");
  READ_OR_RETURN(read_inputs(r, *in, plan.inputs));

  const json* devices = nullptr;
  READ_OR_RETURN(r.arr(j, "devices", "devices", devices));
  for (size_t k = 0; k < devices->size(); ++k) {
    const json& d = (*devices)[k];
    const std::string where = fmt::format("devices[{}]", k);
    if (!d.is_object()) return r.bad(where, "an object");
    std::string name;
    READ_OR_RETURN(r.str(d, "name", where + ".name", name));
    plan.devices.push_back(name);
    double peak = kAbsent;
    READ_OR_RETURN(r.num(d, "peak_memory_bytes", where + ".peak_memory_bytes", peak, false));
    plan.peak_memory.push_back(peak);
    double busy = kAbsent;
    READ_OR_RETURN(r.num(d, "busy_ms", where + ".busy_ms", busy, false));
    plan.busy_ms.push_back(busy);
  }
  if (std::any_of(plan.peak_memory.begin(), plan.peak_memory.end(), absent)) plan.peak_memory.clear();
  if (std::any_of(plan.busy_ms.begin(), plan.busy_ms.end(), absent)) plan.busy_ms.clear();

  const json* ops = nullptr;
  READ_OR_RETURN(r.arr(j, "ops", "ops", ops));
  std::set<std::string> seen;
  for (size_t k = 0; k < ops->size(); ++k) {
    PlanFileOp op;
    READ_OR_RETURN(read_op(r, (*ops)[k], fmt::format("ops[{}]", k), op));
    if (!seen.insert(op.name).second)
      return Error{fmt::format("{}: operator '{}' is listed twice (ops[{}])", source, op.name, k)};
    plan.ops.push_back(std::move(op));
  }

  const json* transfers = nullptr;
  READ_OR_RETURN(r.arr(j, "transfers", "transfers", transfers, false));
  for (size_t k = 0; transfers && k < transfers->size(); ++k) {
    const json& t = (*transfers)[k];
    const std::string where = fmt::format("transfers[{}]", k);
    if (!t.is_object()) return r.bad(where, "an object");
    PlanFileTransfer tr;
    READ_OR_RETURN(r.str(t, "tensor", where + ".tensor", tr.tensor));
    READ_OR_RETURN(r.str(t, "src", where + ".src", tr.src));
    READ_OR_RETURN(r.str(t, "dst", where + ".dst", tr.dst));
    READ_OR_RETURN(r.num(t, "start_ms", where + ".start_ms", tr.start_ms));
    READ_OR_RETURN(r.num(t, "end_ms", where + ".end_ms", tr.end_ms));
    plan.transfers.push_back(std::move(tr));
  }
  return plan;
}
#undef READ_OR_RETURN

Expected<PlanFile> read_plan(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{fmt::format("{}: cannot open the plan file", path)};
  std::ostringstream text;
  text << in.rdbuf();
  auto plan = parse_plan(text.str(), path);
  if (!plan) return plan;
  const std::string dir = std::filesystem::path(path).parent_path().string();
  for (std::string* p : {&plan->inputs.model, &plan->inputs.cluster, &plan->inputs.profile}) *p = resolved_from(*p, dir);
  return plan;
}

std::vector<std::pair<std::string, std::string>> PlanFile::placement() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(ops.size());
  for (const auto& op : ops) out.emplace_back(op.name, op.device);
  return out;
}

std::map<std::string, std::vector<std::string>> PlanFile::order() const {
  std::vector<size_t> idx(ops.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return ops[a].start_ms < ops[b].start_ms; });
  std::map<std::string, std::vector<std::string>> out;
  for (size_t i : idx) out[ops[i].device].push_back(ops[i].name);
  return out;
}

Expected<Placement> resolve_placement(const PlanFile& plan, const CostTable& table) {
  std::map<std::string, DeviceId> dev;
  for (DeviceId d = 0; d < table.num_devices(); ++d) dev[table.device_names[static_cast<size_t>(d)]] = d;
  std::map<std::string, OpId> opid;
  for (OpId o = 0; o < table.num_ops(); ++o) opid[table.op_names[static_cast<size_t>(o)]] = o;

  Placement p;
  p.device.assign(static_cast<size_t>(table.num_ops()), kNone);
  for (const auto& op : plan.ops) {
    auto d = dev.find(op.device);
    if (d == dev.end()) {
      std::string known;
      for (const auto& name : table.device_names) known += (known.empty() ? "" : ", ") + name;
      return Error{fmt::format("{}: operator '{}' is placed on unknown device '{}' (devices: {})", plan.path, op.name,
                               op.device, known)};
    }
    auto o = opid.find(op.name);
    if (o == opid.end())
      return Error{fmt::format("{}: unknown operator '{}' (not in model '{}')", plan.path, op.name, table.name)};
    p.device[static_cast<size_t>(o->second)] = d->second;
  }
  int missing = 0;
  OpId first = kNone;
  for (OpId o = 0; o < table.num_ops(); ++o)
    if (p.device[static_cast<size_t>(o)] == kNone && missing++ == 0) first = o;
  if (missing > 0)
    return Error{fmt::format("{}: the plan does not place operator '{}'{}", plan.path,
                             table.op_names[static_cast<size_t>(first)],
                             missing > 1 ? fmt::format(" (and {} more)", missing - 1) : std::string())};
  p.order.assign(static_cast<size_t>(table.num_devices()), {});
  for (const auto& [name, names] : plan.order())
    for (const auto& op : names) p.order[static_cast<size_t>(dev.at(name))].push_back(opid.at(op));
  return p;
}

WrittenSchedule written_schedule(const PlanFile& plan, const CostTable& table) {
  const int n = table.num_ops(), k = table.num_devices();
  WrittenSchedule w;
  Schedule& s = w.schedule;
  s.ops.assign(static_cast<size_t>(n), {});
  s.makespan_ms = plan.makespan_ms;
  w.names.ops.assign(static_cast<size_t>(n), "ops");
  w.names.devices.assign(static_cast<size_t>(k), "devices");
  std::map<std::string, DeviceId> dev;
  for (DeviceId d = 0; d < k; ++d) dev[table.device_names[static_cast<size_t>(d)]] = d;
  std::map<std::string, OpId> opid;
  for (OpId o = 0; o < n; ++o) opid[table.op_names[static_cast<size_t>(o)]] = o;
  std::vector<DeviceId> placed(static_cast<size_t>(n), kNone);
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    const auto o = opid.find(plan.ops[i].name);
    if (o == opid.end()) continue;  // resolve_placement reports unknown operators
    s.ops[static_cast<size_t>(o->second)] = {plan.ops[i].start_ms, plan.ops[i].end_ms};
    w.names.ops[static_cast<size_t>(o->second)] = fmt::format("ops[{}]", i);
    if (const auto d = dev.find(plan.ops[i].device); d != dev.end()) placed[static_cast<size_t>(o->second)] = d->second;
  }
  // The file's peak memory figures, in table order, when every table device has one.
  s.peak_memory.assign(static_cast<size_t>(k), kAbsent);
  for (size_t i = 0; i < plan.devices.size() && i < plan.peak_memory.size(); ++i)
    if (const auto d = dev.find(plan.devices[i]); d != dev.end()) {
      s.peak_memory[static_cast<size_t>(d->second)] = plan.peak_memory[i];
      w.names.devices[static_cast<size_t>(d->second)] = fmt::format("devices[{}]", i);
    }
  if (std::any_of(s.peak_memory.begin(), s.peak_memory.end(), absent)) s.peak_memory.clear();

  std::multimap<std::string, int> data;
  for (int i = 0; i < static_cast<int>(table.data.size()); ++i) data.emplace(table.data[static_cast<size_t>(i)].name, i);
  for (size_t j = 0; j < plan.transfers.size(); ++j) {
    const PlanFileTransfer& tr = plan.transfers[j];
    const std::string where = fmt::format("transfers[{}]", j);
    const auto src = dev.find(tr.src), dst = dev.find(tr.dst);
    const auto [first, end] = data.equal_range(tr.tensor);
    if (first == end) w.problems.push_back(fmt::format("{}.tensor: unknown tensor '{}'", where, tr.tensor));
    if (src == dev.end()) w.problems.push_back(fmt::format("{}.src: unknown device '{}'", where, tr.src));
    if (dst == dev.end()) w.problems.push_back(fmt::format("{}.dst: unknown device '{}'", where, tr.dst));
    if (first == end || src == dev.end() || dst == dev.end()) continue;
    int id = first->second;  // tensor names may repeat: prefer the one produced on the sending device
    for (auto it = first; it != end; ++it)
      if (placed[static_cast<size_t>(table.data[static_cast<size_t>(it->second)].producer)] == src->second) id = it->second;
    s.transfers.push_back({id, src->second, dst->second, tr.start_ms, tr.end_ms, table.data[static_cast<size_t>(id)].bytes});
    w.names.transfers.push_back(where);
  }
  return w;
}

}  // namespace moirai
